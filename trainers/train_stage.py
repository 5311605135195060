"""The training job as the CLI runs it: a progress bar (steps, loss, tokens/s) and a summary."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from distillery.trainers.base import Launcher, TrainConfig
from distillery.trainers.training_job import JobOutcome, TrainingError, TrainJob, run_training
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse

# Full fine-tuning of a 135M model on tens to hundreds of search targets: 1e-4 moved
# held-out pass@1 where 5e-5 for one epoch did not (benchmarks/RESULTS.md, "Effect").
RSFT_LR = 1e-4
DPO_LR = 5e-6  # TRL's DPO examples' order of magnitude for full fine-tuning


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


def build_training(
    method: str,
    base: str,
    out: str,
    suite: str | None = None,
    samples_of: str | None = None,
    *,
    mode: str = "all",
    per_prompt: int = 4,
    per_family: int | None = None,
    strategy: str = "pass-fail",
    max_per_prompt: int = 4,
    min_margin: float = 0.0,
    beta: float = 0.1,
    loss: str = "sigmoid",
    lora: bool = False,
    learning_rate: float | None = None,
    epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 8,
    max_length: int = 512,
    threads: int | None = None,
) -> tuple[TrainJob, TrainConfig, Launcher]:
    """(job, config, launcher) for `method` (rsft | dpo); bad values raise TrainingError."""
    from distillery.curate.pairs import PairConfig
    from distillery.curate.selection import SelectionConfig

    common = {
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "max_length": max_length,
        "lora": lora,
        "threads": threads,
    }
    try:
        if method == "rsft":
            from distillery.trainers.rsft_trainer import RSFTConfig, RSFTLauncher

            selection = SelectionConfig(mode, per_prompt, per_family)  # type: ignore[arg-type]
            config: TrainConfig = RSFTConfig(
                learning_rate=RSFT_LR if learning_rate is None else learning_rate, **common
            )
            job = TrainJob("rsft", base, out, suite, samples_of, selection=selection)
            return job, config, RSFTLauncher(config)
        if method == "dpo":
            from distillery.trainers.dpo_trainer import DPOLauncher, DPOTrainConfig

            pairs = PairConfig(strategy, max_per_prompt, min_margin)  # type: ignore[arg-type]
            config = DPOTrainConfig(
                learning_rate=DPO_LR if learning_rate is None else learning_rate,
                beta=beta,
                loss=loss,
                **common,
            )
            job = TrainJob("dpo", base, out, suite, samples_of, pairs=pairs)
            return job, config, DPOLauncher(config)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    raise TrainingError(f"unknown training method {method!r}; use rsft or dpo")
