"""One Prefect flow per stage: load prompts, search, verify, select or pair, train (RSFT or DPO),
evaluate, promote, report.

Each flow has plain typed parameters (the UI shows them as a form), calls the stage's
plain function, leaves its summary as artifacts, and returns a small JSON-able dict.
Verification, training and evaluation are each one task run of their flow run (`verify`,
`train-rsft`/`train-dpo`, `eval`), with a progress artifact the stage updates as samples
are verified, steps logged or draws made; they parallelise inside (sandbox workers, the
trainer, batched decoding), and a rerun skips what the warehouse already holds. Sampling
is sharded; see `sample_flow.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from distillery.curate.pairs_config import PairsConfig
from distillery.curate.select_config import SelectConfig
from distillery.evals.eval_config import EvalConfig
from distillery.evals.gate_config import PromoteConfig
from distillery.evals.report_config import ReportConfig
from distillery.filters.verification import VerifySummary
from distillery.filters.verify_config import VerifyConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.generators.search_config import SearchConfig
from distillery.trainers.train_config import DPOConfig, RSFTConfig
from distillery.trainers.training_job import JobOutcome
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@flow(name="prompts-load", flow_run_name=run_name("prompts-load", "source", "suite"))
def prompts_flow(
    source: str = "seeds", suite: str | None = None, warehouse: str = "warehouse-data"
) -> dict[str, Any]:
    """Load a suite (seeds | humaneval | FILE.jsonl | FILE.parquet) into the warehouse."""
    from distillery.tasks.prompts_stage import prompts_job

    loaded = prompts_job(source, suite, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "prompts-summary",
        f"## Suite {loaded.suite}\n\n{loaded.new} new prompts, "
        f"{loaded.total - loaded.new} already loaded.\n\n"
        + artifacts.md_table(
            ["family", "train", "test"],
            ((f, c["train"], c["test"]) for f, c in loaded.per_family_split.items()),
        ),
    )
    return asdict(loaded)


@flow(name="samples-import", flow_run_name=run_name("samples-import", "model_name", "file"))
def import_flow(file: str, model_name: str, warehouse: str = "warehouse-data") -> tuple[int, int]:
    """Completions made elsewhere (JSONL: prompt_id, text) as samples of a named model."""
    from distillery.generators.sample_stage import import_samples

    written, skipped = import_samples(Path(file), model_name, Path(warehouse))
    artifacts.publish_markdown(
        "import-summary",
        f"## Imported samples\n\n**{written}** samples of {model_name} from `{file}` "
        f"({skipped} already present).\n",
    )
    return written, skipped


@flow(
    name="search",
    flow_run_name=run_name(
        "search", "config.model", "config.suite/config.split", "config.procedures"
    ),
)
def search_flow(
    config: SearchConfig = SearchConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Find verified targets: best-of-N, a prompted context, validate-and-retry, adaptive n."""
    from distillery.generators.search_stage import search_stage

    s = search_stage(config, Path(warehouse), stage_console())
    rows = [
        {"family": f, "prompts": c["prompts"], "solved": c["solved"], "completions": c["spent"]}
        for f, c in s.per_family.items()
    ]
    artifacts.publish_markdown(
        "search-summary",
        f"## Search {'+'.join(config.procedures)} on {config.suite}/{config.split}\n\n"
        f"**{s.solved}/{s.prompts}** prompts solved with a budget of {config.budget} "
        f"completions ({s.spent} looked at, {s.written} new, {s.waves} waves); passing "
        f"answers by procedure: {dict(s.passes) or 'none'}.\n\n"
        + artifacts.md_table(
            ["family", "prompts", "solved", "completions"], (tuple(r.values()) for r in rows)
        ),
    )
    return {
        "prompts": s.prompts,
        "solved": s.solved,
        "spent": s.spent,
        "written": s.written,
        "waves": s.waves,
        "passes": dict(s.passes),
        "per_family": {f: dict(c) for f, c in s.per_family.items()},
    }


# A stage's task runs once in its flow's process and hands its summary straight back: no
# cache (the warehouse is the cache) and no stored result (nothing reads it later).
stage_task = task(cache_policy=NO_CACHE, persist_result=False)


@stage_task(name="verify")
def verify_task(config: VerifyConfig, warehouse: str) -> VerifySummary:
    from distillery.filters.verify_stage import verify_stage

    progress = artifacts.ProgressArtifact(
        "verify-progress", f"verifying samples of {config.model or 'every model'}"
    )
    summary = verify_stage(config, Path(warehouse), stage_console(), progress.count)
    progress.update(1.0, force=True)  # also when nothing was left to verify
    return summary


@flow(name="verify", flow_run_name=run_name("verify", "config.model", "config.suite/config.split"))
def verify_flow(
    config: VerifyConfig = VerifyConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Verify samples that have no verdict for their verifier's current version."""
    s = verify_task(config, warehouse)
    artifacts.publish_markdown(
        "verify-summary",
        artifacts.verify_md(s.selected, s.already, s.written, s.faults, s.seconds, s.per_family),
    )
    artifacts.publish_table(
        "verify-families",
        artifacts.verify_rows(s.per_family),
        "pass rate and reason counts per family",
    )
    return {
        "selected": s.selected,
        "already": s.already,
        "written": s.written,
        "faults": s.faults,
        "per_family": {f: c.as_dict() for f, c in s.per_family.items()},
    }


@flow(
    name="pairs",
    flow_run_name=run_name("pairs", "config.model", "config.suite/config.split", "config.pairing"),
)
def pairs_flow(
    config: PairsConfig = PairsConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Build chosen/rejected pairs from verified samples."""
    from distillery.curate.pairs_stage import pairs_stage

    report, new = pairs_stage(config, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "pairs-summary",
        artifacts.pairs_md(
            report.prompts,
            len(report.pairs),
            new,
            report.all_pass,
            report.all_fail,
            report.no_contrast,
        ),
    )
    return {"prompts": report.prompts, "pairs": len(report.pairs), "new": new}


@flow(
    name="select",
    flow_run_name=run_name("select", "config.model", "config.suite/config.split", "config.mode"),
)
def select_flow(
    config: SelectConfig = SelectConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Select RSFT's training targets from verified samples."""
    from distillery.curate.select_stage import select_stage

    report, record = select_stage(config, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "selection-summary",
        artifacts.selection_md(
            record.selection_id,
            report.prompts,
            len(report.selected),
            report.prompts_without_pass,
            report.duplicates_dropped,
            report.capped,
            dict(report.per_family),
        ),
    )
    return {
        "selection_id": record.selection_id,
        "prompts": report.prompts,
        "selected": len(report.selected),
    }


def _train_work(config: RSFTConfig | DPOConfig, warehouse: str) -> JobOutcome:
    from distillery.trainers.train_stage import train_stage

    progress = artifacts.ProgressArtifact("training-progress", f"{config.kind} → {config.out}")
    logger = get_run_logger()

    def on_step(step: int, total: int, loss: float, tokens_per_s: float) -> None:
        # The loss curve as it is made: one log line per logged step, and the bar's share.
        logger.info(f"step {step}/{total or '?'}: loss {loss:.4f}, {tokens_per_s:.0f} tok/s")
        progress.count(step, total)

    outcome = train_stage(config, Path(warehouse), stage_console(), on_step)
    progress.update(1.0, force=True)
    return outcome


train_tasks = {
    "rsft": stage_task(name="train-rsft")(_train_work),
    "dpo": stage_task(name="train-dpo")(_train_work),
}


def _train(config: RSFTConfig | DPOConfig, warehouse: str) -> dict[str, Any]:
    outcome = train_tasks[config.kind](config, warehouse)
    r = outcome.result
    assert r is not None  # train_stage raises on a failed job
    artifacts.publish_markdown(
        "training-summary",
        artifacts.training_md(config.kind, config.out, outcome),
    )
    return {
        "job_id": outcome.job_id,
        "model_id": outcome.model_id,
        "rows": outcome.rows,
        "steps": r.steps,
        "seconds": r.seconds,
        "loss_first": r.loss_curve[0][1] if r.loss_curve else None,
        "loss_last": r.loss_curve[-1][1] if r.loss_curve else None,
    }


@flow(
    name="train-rsft",
    flow_run_name=run_name("train-rsft", "config.base", "config.suite", "out=config.out"),
)
def rsft_flow(
    config: RSFTConfig = RSFTConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """RSFT: TRL's SFTTrainer on the stored selection (completion-only loss)."""
    return _train(config, warehouse)


@flow(
    name="train-dpo",
    flow_run_name=run_name("train-dpo", "config.base", "config.suite", "out=config.out"),
)
def dpo_flow(
    config: DPOConfig = DPOConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """DPO: TRL's DPOTrainer on the stored chosen/rejected pairs."""
    return _train(config, warehouse)


@stage_task(name="eval")
def eval_task(config: EvalConfig, warehouse: str) -> list[EvalRecord]:
    from distillery.evals.eval_stage import eval_stage

    progress = artifacts.ProgressArtifact("eval-progress", f"evaluating {config.model}")
    records = eval_stage(config, Path(warehouse), stage_console(), progress.count)
    progress.update(1.0, force=True)
    return records


@flow(
    name="eval",
    flow_run_name=run_name("eval", "config.model", "config.suite/config.split", "n=config.n"),
)
def eval_flow(
    config: EvalConfig = EvalConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> list[dict[str, Any]]:
    """pass@k (unbiased, 95% bootstrap CI) per family, with cost, into `evals`."""
    records = eval_task(config, warehouse)
    model = config.model
    artifacts.publish_markdown(
        "eval-summary", artifacts.eval_md(model, records), f"pass@k of {model} with cost"
    )
    artifacts.publish_table(
        "eval-pass-at-k",
        artifacts.eval_rows(model, records),
        f"per-family pass@k of {model} on {config.suite}/{config.split}",
    )
    return [asdict(r) for r in records]


@flow(name="promote", flow_run_name=run_name("promote", "config.model", "parent=config.parent"))
def promote_flow(
    config: PromoteConfig,
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """The promotion gate on held-out evals (a paired bootstrap of per-prompt pass@1);
    the decision goes to `promotions`."""
    from distillery.evals.gate import promote_stage

    c = config
    decision, record = promote_stage(c, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "promotion-decision",
        artifacts.promotion_md(c.model, decision.promoted, decision.numbers, decision.reasons),
    )
    return {
        "promoted": decision.promoted,
        "reasons": list(decision.reasons),
        "numbers": json.loads(record.numbers),
        "promotion_id": record.promotion_id,
    }


@flow(name="report", flow_run_name=run_name("report", "config.model", "base=config.base"))
def report_flow(
    config: ReportConfig = ReportConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> str:
    """report.md with PNG plots; the plots also go to the UI as artifacts."""
    from distillery.evals.report import write_report
    from distillery.warehouse.store import Warehouse

    c = config
    wh = Warehouse.open_existing(Path(warehouse))
    path = write_report(wh, Path(c.out), c.suite, c.split, c.base, c.model)
    artifacts.publish_plots(path.parent)
    artifacts.publish_markdown("report", path.read_text(encoding="utf-8"), f"report.md ({path})")
    return str(path)
