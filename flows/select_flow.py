"""The `select` flow: RSFT's training targets from verified samples (`distillery select`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from distillery.curate.select_config import SelectConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


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
