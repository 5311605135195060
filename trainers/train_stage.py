"""The training job as the CLI runs it: a progress bar (steps, loss, tokens/s) and a summary."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from distillery.trainers.base import Launcher
from distillery.trainers.dpo_trainer import DPOLauncher
from distillery.trainers.rsft_trainer import RSFTLauncher
from distillery.trainers.train_config import DPOConfig, TrainConfig
from distillery.trainers.training_job import JobOutcome, TrainingError, run_training
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse

StepFn = Callable[[int, int, float, float], None]  # (step, total steps, loss, tokens/s)


@contextmanager
def _train_bar(console: Console, label: str, on_step: StepFn | None):  # type: ignore[no-untyped-def]
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
        if on_step is not None:
            on_step(step, total, loss, tokens_per_s)

    with progress:
        yield update


def train_stage(
    config: TrainConfig, root: Path, console: Console, on_step: StepFn | None = None
) -> JobOutcome:
    """Train per `config`, register the model, print a summary (TrainingError on failure).
    `on_step` hears of every logged step too (the flow shows it in the UI)."""
    wh = Warehouse.open_existing(root)
    launcher = launcher_for(config)
    with (
        recorded_run(wh, f"train-{config.kind}", config.as_params()) as run_id,
        _train_bar(console, f"{config.kind} → {config.out}", on_step) as bar,
    ):
        outcome = run_training(wh, config, launcher, run_id, bar)
    r = outcome.result
    if outcome.status != "completed":
        raise TrainingError(
            f"training job {outcome.job_id} failed: {outcome.reason}; no model registered"
        )
    assert r is not None
    first = r.loss_curve[0][1] if r.loss_curve else float("nan")
    last = r.loss_curve[-1][1] if r.loss_curve else float("nan")
    console.print(
        f"{config.kind} on {outcome.rows} rows: {r.steps} steps in {r.seconds:.1f}s "
        f"({r.tokens_per_s:.0f} tok/s), loss {first:.4f} → {last:.4f}\n"
        f"registered [bold]{config.out}[/] ({outcome.model_id}, job {outcome.job_id}); "
        f"TRL-ready data: {outcome.export_path}"
    )
    return outcome


def launcher_for(config: TrainConfig) -> Launcher:
    """The TRL launcher that trains `config` (transformers and TRL load when it trains)."""
    if isinstance(config, DPOConfig):
        return DPOLauncher(config)
    return RSFTLauncher(config)
