"""The `train-rsft` and `train-dpo` flows, each with its one training task run
(`distillery train rsft|dpo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.flows.stage_task import stage_task
from distillery.trainers.train_config import DPOConfig, RSFTConfig
from distillery.trainers.training_job import JobOutcome
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


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
