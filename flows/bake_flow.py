"""The pipelines: `bake` (the end-to-end loop for R rounds) and `sample-and-verify`.

Each stage is a child flow run.

Round r searches the train split with the current model for verified answers (bare
best-of-N, a prompted context, validate-and-retry, adaptive k; `--search plain` draws k
bare samples instead), verifies what is left, stores the training data (the RSFT
selection or the DPO pairs), trains `NAME-rR` from the current model on it against the
bare prompt, evaluates the current and the new model on the held-out split with the bare
prompt, and runs the promotion gate. A
promoted model is the next round's current model and searches again (ReST-EM); a
refused one ends the bake (the next round would search with the same model and seeds).

Every stage resumes from the warehouse, so rerunning a bake that was killed redoes only
what is missing: finished sampling shards are not scheduled, drawn and verified samples
are found again by their content ids, a round model that was registered is not trained
again, and evals and promotion decisions are content-hashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from prefect import flow

from distillery.config.base import project
from distillery.config.groups import BackendChoice, Decoding, Sharding
from distillery.curate.pairs_config import PairsConfig
from distillery.curate.select_config import SelectConfig
from distillery.evals.eval_config import EvalConfig
from distillery.evals.gate_config import GateConfig, PromoteConfig
from distillery.evals.report import require_matplotlib
from distillery.evals.report_config import ReportConfig
from distillery.filters.verification import FamilyCounts
from distillery.filters.verify_config import VerifyConfig
from distillery.flows import artifacts
from distillery.flows.bake_config import BakeConfig
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.flows.sample_flow import sample_flow
from distillery.flows.stage_flows import (
    dpo_flow,
    eval_flow,
    pairs_flow,
    promote_flow,
    report_flow,
    rsft_flow,
    search_flow,
    select_flow,
    verify_flow,
)
from distillery.flows.task_runners import make_task_runner
from distillery.generators import model_store
from distillery.generators.sample_config import SampleConfig
from distillery.generators.search_config import SearchConfig, SearchPolicy
from distillery.trainers.train_config import DPOConfig, RSFTConfig, TrainArgs
from distillery.trainers.training_job import TrainingError
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE
from distillery.warehouse.store import Warehouse

REPORTS_DIR = "reports"


@contextmanager
def stage_runs() -> Iterator[None]:
    """Child stage flows without heartbeats of their own.

    Prefect joins a flow run's heartbeat thread at its end, which costs up to a second per
    run; the stages run in the pipeline's process, whose own heartbeats already say
    whether that process is alive.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def round_model(name: str, r: int) -> str:
    return f"{name}-r{r}"


def _trained(wh: Warehouse, name: str, parent: str) -> bool:
    """Whether `name` was trained from `parent` already (a resumed bake skips training)."""
    row = model_store.model_row(wh, name)
    if row is None:
        return False
    parent_row = model_store.model_row(wh, parent)
    if not row.trained or parent_row is None or row.parent_id != parent_row.model_id:
        raise TrainingError(
            f"a model named {name!r} exists but was not trained from {parent!r} by this bake; "
            "pick another --name"
        )
    return True


def bake_md(name: str, base: str, rounds: list[dict[str, Any]], final: str) -> str:
    rows = [
        (
            r["round"],
            r["from"],
            r["sampled"],
            f"{r['train_pass_rate']:.1%}",
            r["examples"],
            r["steps"],
            r["loss"],
            f"{r['parent_pass_at_1']:.3f}",
            f"{r['model_pass_at_1']:.3f}",
            r["decision"],
        )
        for r in rounds
    ]
    return (
        f"## Bake {name}\n\nbase **{base}** → final **{final}** after {len(rounds)} round(s).\n\n"
        + artifacts.md_table(
            [
                "round",
                "sampled from",
                "new samples",
                "train pass rate",
                "targets/pairs",
                "steps",
                "loss",
                "parent pass@1",
                "new pass@1",
                "gate",
            ],
            rows,
        )
        + "\n"
    )


@flow(
    name="bake",
    flow_run_name=run_name(
        "bake", "config.name", "config.model", "config.suite", "rounds=config.rounds"
    ),
)
def bake_flow(
    config: BakeConfig = BakeConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Search (or sample) → verify → (pair) → train → evaluate → gate, for `rounds` rounds."""
    c = config
    # Both fail in one line now rather than after the rounds: the runner, and the report's plots.
    make_task_runner(c.runner, c.dask_address, c.dask_workers)
    require_matplotlib()
    console = stage_console()
    wh = Warehouse.open(Path(warehouse))
    # Each stage's config is the bake's fields under the same names (`project`).
    decoding = project(c, Decoding).as_params()
    backend = project(c, BackendChoice).as_params()
    train_args = {
        f.name: getattr(c, f.name) for f in fields(TrainArgs) if getattr(c, f.name) is not None
    }
    with recorded_run(wh, "bake", c.as_params()), stage_runs():
        ks = tuple(sorted({1, c.eval_n}))
        current = c.model
        done: list[dict[str, Any]] = []
        for r in range(1, c.rounds + 1):
            out = round_model(c.name, r)
            console.rule(f"[bold]bake {c.name}: round {r}/{c.rounds}, sampling from {current}")
            scope = {
                "suite": c.suite,
                "split": "train",
                "limit": c.limit,
                "per_family": c.per_family,
            }
            if c.search == "plain":
                sampled = sample_flow(
                    SampleConfig(model=current, n=c.n, **scope, **decoding, **backend),
                    project(c, Sharding),
                    warehouse,
                )
            else:
                policy = project(c, SearchPolicy).as_params()
                found = search_flow(
                    SearchConfig(
                        model=current,
                        context_file=c.context_file,
                        **policy,
                        **scope,
                        **decoding,
                        **backend,
                    ),
                    warehouse,
                )
                sampled = {"written": found["written"]}
            verified = verify_flow(VerifyConfig(c.suite, current, "train"), warehouse)
            counts = [FamilyCounts.from_dict(f) for f in verified["per_family"].values()]
            n_verified = sum(f.verified for f in counts)
            n_passed = sum(f.passed for f in counts)
            if c.search != "plain":
                # The search verified as it went: its share of prompts with a target.
                n_verified, n_passed = found["prompts"], found["solved"]
            # Training reads what these store: the pairs (DPO) or the selection (RSFT).
            if c.method == "dpo":
                examples = pairs_flow(PairsConfig(suite=c.suite, model=current), warehouse)["pairs"]
            else:
                chosen = select_flow(SelectConfig(suite=c.suite, model=current), warehouse)
                examples = chosen["selected"]
            trained: dict[str, Any] = {}
            if _trained(wh, out, current):
                console.print(f"{out} is already trained from {current}; not training it again")
            else:
                data = {"base": current, "out": out, "suite": c.suite, "samples_of": current}
                if c.method == "dpo":
                    dpo = DPOConfig(**data, **train_args, beta=c.beta, loss_type=c.loss_type)
                    trained = dpo_flow(dpo, warehouse)
                else:
                    trained = rsft_flow(RSFTConfig(**data, **train_args), warehouse)
            evals = {}
            for who in (current, out):
                evals[who] = eval_flow(
                    EvalConfig(
                        model=who,
                        suite=c.suite,
                        split="test",
                        n=c.eval_n,
                        k=ks,
                        per_family=c.eval_per_family,
                        **decoding,
                        **backend,
                    ),
                    warehouse,
                )
            decision = promote_flow(
                PromoteConfig(
                    model=out,
                    parent=current,
                    suite=c.suite,
                    split="test",
                    n=c.eval_n,
                    **project(c, GateConfig).as_params(),
                    **decoding,
                ),
                warehouse,
            )
            nums = decision["numbers"]
            done.append(
                {
                    "round": r,
                    "from": current,
                    "model": out,
                    "sampled": sampled["written"],
                    "train_pass_rate": n_passed / n_verified if n_verified else 0.0,
                    "examples": examples,
                    "steps": trained.get("steps", "-"),
                    "loss": (
                        f"{trained['loss_first']:.3f} → {trained['loss_last']:.3f}"
                        if trained.get("loss_first") is not None
                        else "-"
                    ),
                    "parent_pass_at_1": nums["parent_pass_at_1"],
                    "model_pass_at_1": nums["model_pass_at_1"],
                    "delta": nums["delta"],
                    "lower_bound": nums.get("lower_bound"),
                    "decision": "promoted" if decision["promoted"] else "refused",
                    "reasons": decision["reasons"],
                }
            )
            if not decision["promoted"]:
                console.print(f"[bold red]{out} refused[/]: the bake stops at round {r}")
                break
            current = out
        report = report_flow(
            ReportConfig(
                out=str(wh.local_dir / REPORTS_DIR / c.name),
                base=c.model,
                model=done[-1]["model"],
                suite=c.suite,
                split="test",
            ),
            warehouse,
        )
        artifacts.publish_markdown(
            "bake-summary",
            bake_md(c.name, c.model, done, current),
            "per round: samples, train pass rate, training, held-out pass@1, gate",
        )
        rows = [
            row
            for who, records in evals.items()
            for row in artifacts.eval_rows(who, [EvalRecord(**x) for x in records])
        ]
        artifacts.publish_table("bake-pass-at-k", rows, "per-family pass@k, last round")
        artifacts.publish_plots(Path(report).parent, key_prefix="bake")
        console.print(f"bake {c.name}: final model [bold]{current}[/]; report {report}")
        return {
            "name": c.name,
            "base": c.model,
            "final": current,
            "rounds": done,
            "report": report,
            "evals": evals,  # the last round's: parent and child, as eval rows
        }


@flow(
    name="sample-and-verify",
    flow_run_name=run_name(
        "sample-and-verify", "config.model", "config.suite/config.split", "n=config.n"
    ),
)
def sample_verify_flow(
    config: SampleConfig = SampleConfig(n=8),  # noqa: B008 - frozen, so one shared default is safe
    sharding: Sharding = Sharding(),  # noqa: B008
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Sample the prompts that lack samples (new ones, after a `prompts load`) and verify."""
    with stage_runs():
        sampled = sample_flow(config, sharding, warehouse)
        verified = verify_flow(VerifyConfig(config.suite, config.model, config.split), warehouse)
    return {"sampled": sampled["written"], "verified": verified["written"]}
