"""The pipelines: `bake` (the end-to-end loop for R rounds) and `sample-and-verify`.

Each stage is a child flow run.

Round r searches the train split with the current model for verified answers (bare
best-of-N, a prompted context, validate-and-retry, adaptive k; `--search plain` draws k
bare samples instead), verifies what is left, pairs (DPO), trains `NAME-rR` from the
current model on those answers against the bare prompt, evaluates the current and the
new model on the held-out split with the bare prompt, and runs the promotion gate. A
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
from pathlib import Path
from typing import Any

from prefect import flow
from rich.console import Console

from distillery.config.groups import Sharding
from distillery.curate.pairs import PairsConfig
from distillery.evals.eval_config import EvalConfig
from distillery.evals.gate_config import PromoteConfig
from distillery.evals.report_config import ReportConfig
from distillery.filters.verification import FamilyCounts
from distillery.filters.verify_config import VerifyConfig
from distillery.flows import artifacts
from distillery.flows.sample_flow import sample_flow
from distillery.flows.stage_flows import (
    eval_flow,
    pairs_flow,
    promote_flow,
    report_flow,
    search_flow,
    train_flow,
    verify_flow,
)
from distillery.flows.task_runners import make_task_runner
from distillery.generators import model_store
from distillery.generators.sample_config import SampleConfig
from distillery.generators.search_config import SearchConfig, SearchPolicy
from distillery.trainers.training_job import TrainingError
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse

REPORTS_DIR = "reports"
# A search yields tens of targets per family, not thousands: one epoch is a handful of
# optimizer steps, which moved nothing measurable. Three epochs at RSFT's 1e-4 moved
# held-out pass@1 of SmolLM2-135M significantly (benchmarks/RESULTS.md, "Effect").
BAKE_EPOCHS = 3.0


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
                "pairs/rows",
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


@flow(name="bake")
def bake_flow(
    name: str = "baked",
    model: str = "smollm2-135m",
    suite: str = "seeds",
    rounds: int = 1,
    method: str = "rsft",
    k: int = 8,
    search: str = "sample,prompted,retry",
    budget: int = 24,
    targets: int = 2,
    wave: int = 4,
    retries: int = 1,
    shots: int = 3,
    context_file: str | None = None,
    per_family: int | None = None,
    limit: int | None = None,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    seed: int = 0,
    eval_n: int = 8,
    eval_per_family: int | None = None,
    learning_rate: float | None = None,
    epochs: float = BAKE_EPOCHS,
    max_steps: int = -1,
    batch_size: int = 8,
    lora: bool = False,
    beta: float = 0.1,
    min_gain: float = 0.0,
    max_family_drop: float = 0.0,
    confidence: float = 0.95,
    shard_prompts: int = 16,
    shard_deployment: str | None = None,
    runner: str = "threads",
    dask_address: str | None = None,
    dask_workers: int = 2,
    backend: str = "transformers",
    dtype: str = "bf16",
    threads: int | None = None,
    warehouse: str = "warehouse-data",
) -> dict[str, Any]:
    """Sample → verify → (pair) → train → evaluate → gate, for `rounds` rounds."""
    if rounds < 1:
        raise TrainingError(f"--rounds must be at least 1 (got {rounds})")
    if method not in ("rsft", "dpo"):
        raise TrainingError(f"unknown training method {method!r}; use rsft or dpo")
    if eval_n < 1:
        raise TrainingError(f"--eval-n must be at least 1 (got {eval_n})")
    if search != "plain":
        SearchPolicy(tuple(search.split(",")), wave, budget, targets, retries, shots)
    make_task_runner(runner, dask_address, dask_workers)
    console = Console()
    wh = Warehouse.open(Path(warehouse))
    params = {"name": name, "model": model, "suite": suite, "rounds": rounds, "method": method}
    with recorded_run(wh, "bake", params), stage_runs():
        sampling = {
            "temperature": temperature,
            "top_p": top_p,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
        }
        ks = tuple(sorted({1, eval_n}))
        current = model
        done: list[dict[str, Any]] = []
        for r in range(1, rounds + 1):
            out = round_model(name, r)
            console.rule(f"[bold]bake {name}: round {r}/{rounds}, sampling from {current}")
            if search == "plain":
                sampled = sample_flow(
                    SampleConfig(
                        model=current,
                        suite=suite,
                        split="train",
                        n=k,
                        limit=limit,
                        per_family=per_family,
                        backend=backend,  # type: ignore[arg-type]
                        dtype=dtype,  # type: ignore[arg-type]
                        threads=threads,
                        **sampling,
                    ),
                    Sharding(shard_prompts, shard_deployment, runner, dask_address, dask_workers),  # type: ignore[arg-type]
                    warehouse,
                )
            else:
                found = search_flow(
                    SearchConfig(
                        model=current,
                        suite=suite,
                        split="train",
                        procedures=tuple(search.split(",")),
                        wave=wave,
                        budget=budget,
                        targets=targets,
                        retries=retries,
                        shots=shots,
                        context_file=context_file,
                        limit=limit,
                        per_family=per_family,
                        backend=backend,  # type: ignore[arg-type]
                        dtype=dtype,  # type: ignore[arg-type]
                        threads=threads,
                        **sampling,
                    ),
                    warehouse,
                )
                sampled = {"written": found["written"]}
            verified = verify_flow(VerifyConfig(suite, current, "train"), warehouse)
            counts = [FamilyCounts.from_dict(c) for c in verified["per_family"].values()]
            n_verified = sum(c.verified for c in counts)
            n_passed = sum(c.passed for c in counts)
            if search != "plain":
                # The search verified as it went: its share of prompts with a target.
                n_verified, n_passed = found["prompts"], found["solved"]
            examples = None
            if method == "dpo":
                examples = pairs_flow(PairsConfig(suite=suite, model=current), warehouse)["pairs"]
            trained: dict[str, Any] = {}
            if _trained(wh, out, current):
                console.print(f"{out} is already trained from {current}; not training it again")
            else:
                trained = train_flow(
                    method=method,
                    base=current,
                    out=out,
                    suite=suite,
                    samples_of=current,
                    learning_rate=learning_rate,
                    epochs=epochs,
                    max_steps=max_steps,
                    batch_size=batch_size,
                    lora=lora,
                    beta=beta,
                    threads=threads,
                    warehouse=warehouse,
                )
            evals = {}
            for who in (current, out):
                evals[who] = eval_flow(
                    EvalConfig(
                        model=who,
                        suite=suite,
                        split="test",
                        n=eval_n,
                        k=ks,
                        per_family=eval_per_family,
                        backend=backend,  # type: ignore[arg-type]
                        dtype=dtype,  # type: ignore[arg-type]
                        threads=threads,
                        **sampling,
                    ),
                    warehouse,
                )
            decision = promote_flow(
                PromoteConfig(
                    model=out,
                    parent=current,
                    suite=suite,
                    split="test",
                    n=eval_n,
                    min_gain=min_gain,
                    max_family_drop=max_family_drop,
                    confidence=confidence,
                    **sampling,
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
                    "examples": examples if examples is not None else trained.get("rows", "-"),
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
                out=str(Path(warehouse) / REPORTS_DIR / name),
                base=model,
                model=done[-1]["model"],
                suite=suite,
                split="test",
            ),
            warehouse,
        )
        artifacts.publish_markdown(
            "bake-summary",
            bake_md(name, model, done, current),
            "per round: samples, train pass rate, training, held-out pass@1, gate",
        )
        rows = [
            row
            for who, records in evals.items()
            for row in artifacts.eval_rows(who, [EvalRecord(**x) for x in records])
        ]
        artifacts.publish_table("bake-pass-at-k", rows, "per-family pass@k, last round")
        artifacts.publish_plots(Path(report).parent, key_prefix="bake")
        console.print(f"bake {name}: final model [bold]{current}[/]; report {report}")
        return {
            "name": name,
            "base": model,
            "final": current,
            "rounds": done,
            "report": report,
            "evals": evals,  # the last round's: parent and child, as eval rows
        }


@flow(name="sample-and-verify")
def sample_verify_flow(
    model: str = "smollm2-135m",
    suite: str = "seeds",
    split: str | None = "train",
    k: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    seed: int = 0,
    shard_prompts: int = 16,
    warehouse: str = "warehouse-data",
) -> dict[str, Any]:
    """Sample the prompts that lack samples (new ones, after a `prompts load`) and verify."""
    with stage_runs():
        sampled = sample_flow(
            SampleConfig(
                model=model,
                suite=suite,
                split=split,  # type: ignore[arg-type]
                n=k,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
            ),
            Sharding(shard_prompts=shard_prompts),
            warehouse,
        )
        verified = verify_flow(VerifyConfig(suite, model, split), warehouse)
    return {"sampled": sampled["written"], "verified": verified["written"]}
