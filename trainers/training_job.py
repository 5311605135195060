"""A training job end to end: data from the warehouse, TRL, the output registered as a model.

The job records in `training_jobs` the exact sample or pair ids it trained on, its config,
the loss curve and final metrics; the output model gets a `models` row with its parent and
job, so `distillery sample --model NAME` works on it at once. A failed job (NaN loss, out
of memory, interrupted) is marked failed with its reason and registers no model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillery.curate.pairs import PairConfig, build_pairs
from distillery.curate.selection import SelectionConfig, load_candidates, select
from distillery.generators import model_registry, model_store
from distillery.trainers import export
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import ModelRecord, TrainingJobRecord
from distillery.warehouse.store import Warehouse

if TYPE_CHECKING:  # trainers.base imports transformers; the CLI needs this module light
    from distillery.trainers.base import TrainConfig, TrainResult

MODELS_DIR = "models"
EXPORTS_DIR = "exports"


class TrainingError(ValueError):
    """Bad training input; the message says what to do."""


@dataclass(frozen=True)
class TrainJob:
    kind: str  # rsft | dpo
    base: str
    out: str
    suite: str | None
    model_samples: str | None  # whose samples to learn from (default: the base's)
    split: str = "train"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    pairs: PairConfig = field(default_factory=PairConfig)


@dataclass
class JobOutcome:
    job_id: str
    status: str
    reason: str | None
    rows: int
    result: TrainResult | None
    model_id: str | None
    export_path: Path


def _data(
    wh: Warehouse, job: TrainJob, base: model_registry.ResolvedModel, run_id: str
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(sample_ids, pair_ids, TRL rows) for the job; errors before any training starts."""
    source = job.model_samples or base.model_id
    candidates = load_candidates(wh, job.suite, source, job.split)
    if not candidates:
        raise TrainingError(
            f"no verified {job.split} samples of {job.model_samples or base.name} in suite "
            f"{job.suite or 'any'}; run `distillery sample` and `distillery verify` first"
        )
    if job.kind == "rsft":
        ids = [c.sample_id for c in select(candidates, job.selection).selected]
        if not ids:
            raise TrainingError(
                "no passing samples to train on; sample more (--k) or check the verifier"
            )
        return ids, [], export.rsft_rows(wh, ids)
    pairs = build_pairs(candidates, job.pairs).pairs
    if not pairs:
        raise TrainingError("no preference pairs: every prompt was all-pass or all-fail")
    records = [p.to_record(job.pairs.pairing, run_id) for p in pairs]
    # The pairs a job trains on are stored first, so its pair ids resolve in the warehouse.
    have = wh.existing("pairs", "pair_id", (r.pair_id for r in records))
    wh.write([r for r in records if r.pair_id not in have])
    pair_ids = [r.pair_id for r in records]
    return [], pair_ids, export.dpo_rows(wh, pair_ids)


def run_training(
    wh: Warehouse,
    job: TrainJob,
    launcher: Any,
    config: TrainConfig,
    run_id: str,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> JobOutcome:
    if job.kind not in ("rsft", "dpo"):
        raise TrainingError(f"unknown training kind {job.kind!r}; use rsft or dpo")
    from distillery.generators.threads import fixed_threads

    try:  # a malformed DISTILLERY_THREADS fails here, before a job row says "running"
        fixed_threads(config.threads)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    registered = model_store.registered(wh)
    if job.out in registered or job.out in model_registry.ALIASES:
        raise TrainingError(f"a model named {job.out!r} exists; pick another --out")
    base = model_registry.resolve(job.base, registered)
    sample_ids, pair_ids, rows = _data(wh, job, base, run_id)
    # The thread count says how the job ran, not what it trains: the same job at another
    # count keeps its id (and ids from before the field existed stay as they were).
    train = {k: v for k, v in asdict(config).items() if k != "threads"}
    config_json = canonical_json({"job": _plain(asdict(job)), "train": train})
    job_id = content_id("job", job.kind, base.model_id, sample_ids, pair_ids, config_json)
    export_path = export.write_parquet(
        rows, wh.root / EXPORTS_DIR / job_id / f"{job.kind}-train.parquet"
    )
    record = TrainingJobRecord(
        job_id=job_id,
        kind=job.kind,
        base_model_id=base.model_id,
        output_model_id=None,
        sample_ids=sample_ids,
        pair_ids=pair_ids,
        config=config_json,
        metrics="{}",
        status="running",
        reason=None,
        run_id=run_id,
    )
    wh.write([record])
    model_store.register(wh, base, run_id)
    out_dir = wh.root / MODELS_DIR / job.out
    work_dir = wh.root / MODELS_DIR / f".{job.out}.tmp-{job_id[-8:]}"
    result: TrainResult | None = None
    try:
        import torch

        model, tokenizer = model_registry.load(base, dtype=torch.float32)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        result = launcher.train(model, tokenizer, rows, str(work_dir / "trainer"), progress)
        if result.status != "completed":
            raise _Failed(result.reason or "training failed")
        trained = launcher.model
        if hasattr(trained, "merge_and_unload"):
            trained = trained.merge_and_unload()  # a plain model directory samples directly
        trained.config.use_cache = True
        shutil.rmtree(work_dir / "trainer", ignore_errors=True)
        trained.save_pretrained(str(work_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(work_dir))
        shutil.rmtree(out_dir, ignore_errors=True)
        work_dir.rename(out_dir)
    except (_Failed, RuntimeError, MemoryError, KeyboardInterrupt) as exc:
        shutil.rmtree(work_dir, ignore_errors=True)
        reason = str(exc) if isinstance(exc, _Failed) else f"{type(exc).__name__}: {exc}"[:500]
        wh.write(
            [
                replace(
                    record,
                    status="failed",
                    reason=reason,
                    metrics=_metrics(result),
                    created_at=_now(),
                )
            ]
        )
        if isinstance(exc, KeyboardInterrupt):
            raise
        return JobOutcome(job_id, "failed", reason, len(rows), result, None, export_path)
    model_id = content_id("mdl", model_registry.TRAINED, job_id)
    wh.write(
        [
            ModelRecord(
                model_id=model_id,
                name=job.out,
                source=job_id,
                source_kind=model_registry.TRAINED,
                path=str(out_dir.resolve()),
                parent_id=base.model_id,
                job_id=job_id,
                trained=True,
                promoted=False,
                run_id=run_id,
            ),
            replace(
                record,
                status="completed",
                output_model_id=model_id,
                metrics=_metrics(result),
                created_at=_now(),
            ),
        ]
    )
    return JobOutcome(job_id, "completed", None, len(rows), result, model_id, export_path)


class _Failed(Exception):
    pass


def _now() -> Any:
    from distillery.warehouse.records import utcnow

    return utcnow()


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))


def _metrics(result: TrainResult | None) -> str:
    if result is None:
        return "{}"
    return canonical_json(
        {
            "steps": result.steps,
            "seconds": result.seconds,
            "tokens": result.tokens,
            "tokens_per_s": result.tokens_per_s,
            "loss_curve": result.loss_curve,
            "final": result.final,
        }
    )
