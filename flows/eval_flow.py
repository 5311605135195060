"""The `eval` flow and its one `eval` task run (`distillery eval`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from distillery.evals.eval_config import EvalConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.flows.stage_task import stage_task
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


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
