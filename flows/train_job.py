"""The training job as the CLI runs it: a progress bar (steps, loss, tokens/s) and a summary."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from trainers.base import TrainConfig
from trainers.training_job import JobOutcome, TrainingError, TrainJob, run_training
from warehouse.runs import recorded_run
from warehouse.store import Warehouse


@contextmanager
def _train_bar(console: Console, label: str):  # type: ignore[no-untyped-def]
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task(label, total=None, info="")

    def update(step: int, total: int, loss: float, tokens_per_s: float) -> None:
        progress.update(
            task,
            completed=step,
            total=total or None,
            info=f"loss {loss:.4f} · {tokens_per_s:.0f} tok/s",
        )

    with progress:
        yield update


def train_job(
    job: TrainJob, config: TrainConfig, launcher: Any, root: Path, console: Console
) -> JobOutcome:
    wh = Warehouse.open_existing(root)
    params = {"job": asdict(job), "train": asdict(config)}
    with (
        recorded_run(wh, f"train-{job.kind}", params) as run_id,
        _train_bar(console, f"{job.kind} → {job.out}") as bar,
    ):
        outcome = run_training(wh, job, launcher, config, run_id, bar)
    r = outcome.result
    if outcome.status != "completed":
        raise TrainingError(
            f"training job {outcome.job_id} failed: {outcome.reason}; no model registered"
        )
    assert r is not None
    first = r.loss_curve[0][1] if r.loss_curve else float("nan")
    last = r.loss_curve[-1][1] if r.loss_curve else float("nan")
    console.print(
        f"{job.kind} on {outcome.rows} rows: {r.steps} steps in {r.seconds:.1f}s "
        f"({r.tokens_per_s:.0f} tok/s), loss {first:.4f} → {last:.4f}\n"
        f"registered [bold]{job.out}[/] ({outcome.model_id}, job {outcome.job_id}); "
        f"TRL-ready data: {outcome.export_path}"
    )
    return outcome
