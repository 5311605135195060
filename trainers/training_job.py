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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distillery.curate.pairs import stored_pairs
from distillery.curate.selection import model_id_of, stored_selection
from distillery.generators import model_registry, model_store
from distillery.trainers import export
from distillery.trainers.base import Launcher, TrainResult
from distillery.trainers.train_config import DPOConfig, RSFTConfig, TrainConfig
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import ModelRecord, TrainingJobRecord
from distillery.warehouse.store import Warehouse

MODELS_DIR = "models"
EXPORTS_DIR = "exports"


class TrainingError(ValueError):
    """Bad training input; the message says what to do."""


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
    wh: Warehouse, config: TrainConfig, base: model_registry.ResolvedModel
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(sample_ids, pair_ids, TRL rows) for the job; errors before any training starts.

    RSFT reads the selection the `select` stage stored, DPO the pairs the `pairs` stage
    stored: neither builds its data itself."""
    source = config.samples_of or base.model_id
    who = config.samples_of or base.name
    where = f"in suite {config.suite or 'any'}"
    if isinstance(config, DPOConfig):
        pair_ids = stored_pairs(wh, config.suite, source, config.split, config.pairing)
        if not pair_ids:
            raise TrainingError(
                f"no stored {config.pairing} pairs of {who}'s {config.split} samples {where}; "
                f"run `distillery pairs --pairing {config.pairing} --model {who}` first"
            )
        return [], pair_ids, export.dpo_rows(wh, pair_ids)
    stored = stored_selection(wh, config, (config.suite, model_id_of(wh, source), config.split))
    if stored is None:
        raise TrainingError(
            f"no stored selection of {who}'s {config.split} samples {where} with these "
            f"settings; run `{_select_command(config, who)}` first"
        )
    _, ids = stored
    if not ids:
        raise TrainingError(
            "no passing samples to train on; sample more (--n) or check the verifier"
        )
    return ids, [], export.rsft_rows(wh, ids)


def run_training(
    wh: Warehouse,
    config: TrainConfig,
    launcher: Launcher,
    run_id: str,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> JobOutcome:
    kind = config.kind
    from distillery.generators.threads import fixed_threads

    try:  # a malformed DISTILLERY_THREADS fails here, before a job row says "running"
        fixed_threads(config.threads)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    registered = model_store.registered(wh)
    if config.out in registered or config.out in model_registry.ALIASES:
        raise TrainingError(f"a model named {config.out!r} exists; pick another --out")
    base = model_registry.resolve(config.base, registered)
    sample_ids, pair_ids, rows = _data(wh, config, base)
    # The thread count says how the job ran, not what it trains: the same job at another
    # count keeps its id.
    config_json = canonical_json(
        _plain({k: v for k, v in config.as_params().items() if k != "threads"})
    )
    job_id = content_id("job", kind, base.model_id, sample_ids, pair_ids, config_json)
    export_path = export.write_parquet(
        rows, wh.local_dir / EXPORTS_DIR / job_id / f"{kind}-train.parquet"
    )
    record = TrainingJobRecord(
        job_id=job_id,
        kind=kind,
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
    out_dir = wh.local_dir / MODELS_DIR / config.out
    work_dir = wh.local_dir / MODELS_DIR / f".{config.out}.tmp-{job_id[-8:]}"
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
                name=config.out,
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


def _select_command(config: RSFTConfig, who: str) -> str:
    """The `distillery select` that stores the selection `config` trains on."""
    flags = [f"--model {who}"]
    if config.suite:
        flags.append(f"--suite {config.suite}")
    flags.append(f"--split {config.split}")
    flags.append(f"--mode {config.mode} --samples-per-prompt {config.samples_per_prompt}")
    if config.samples_per_family is not None:
        flags.append(f"--samples-per-family {config.samples_per_family}")
    return "distillery select " + " ".join(flags)


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
