"""The `report` flow: report.md with PNG plots, the plots also as artifacts
(`distillery report`)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from distillery.evals.report_config import ReportConfig
from distillery.flows import artifacts
from distillery.flows.run_names import run_name
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@flow(name="report", flow_run_name=run_name("report", "config.model", "base=config.base"))
def report_flow(
    config: ReportConfig = ReportConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> str:
    """report.md with PNG plots; the plots also go to the UI as artifacts."""
    from distillery.evals.report import write_report
    from distillery.warehouse.store import Warehouse

    c = config
    wh = Warehouse.open_existing(Path(warehouse))
    path = write_report(wh, Path(c.out), c.suite, c.split, c.base, c.model)
    artifacts.publish_plots(path.parent)
    artifacts.publish_markdown("report", path.read_text(encoding="utf-8"), f"report.md ({path})")
    return str(path)
