"""The `pairs` flow: chosen/rejected pairs from verified samples (`distillery pairs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from distillery.curate.pairs_config import PairsConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@flow(
    name="pairs",
    flow_run_name=run_name("pairs", "config.model", "config.suite/config.split", "config.pairing"),
)
def pairs_flow(
    config: PairsConfig = PairsConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Build chosen/rejected pairs from verified samples."""
    from distillery.curate.pairs_stage import pairs_stage

    report, new = pairs_stage(config, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "pairs-summary",
        artifacts.pairs_md(
            report.prompts,
            len(report.pairs),
            new,
            report.all_pass,
            report.all_fail,
            report.no_contrast,
        ),
    )
    return {"prompts": report.prompts, "pairs": len(report.pairs), "new": new}
