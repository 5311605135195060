"""The `verify` flow and its one `verify` task run (`distillery verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from distillery.filters.verification import VerifySummary
from distillery.filters.verify_config import VerifyConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.flows.stage_task import stage_task
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@stage_task(name="verify")
def verify_task(config: VerifyConfig, warehouse: str) -> VerifySummary:
    from distillery.filters.verify_stage import verify_stage

    progress = artifacts.ProgressArtifact(
        "verify-progress", f"verifying samples of {config.model or 'every model'}"
    )
    summary = verify_stage(config, Path(warehouse), stage_console(), progress.count)
    progress.update(1.0, force=True)  # also when nothing was left to verify
    return summary


@flow(name="verify", flow_run_name=run_name("verify", "config.model", "config.suite/config.split"))
def verify_flow(
    config: VerifyConfig = VerifyConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Verify samples that have no verdict for their verifier's current version."""
    s = verify_task(config, warehouse)
    artifacts.publish_markdown(
        "verify-summary",
        artifacts.verify_md(s.selected, s.already, s.written, s.faults, s.seconds, s.per_family),
    )
    artifacts.publish_table(
        "verify-families",
        artifacts.verify_rows(s.per_family),
        "pass rate and reason counts per family",
    )
    return {
        "selected": s.selected,
        "already": s.already,
        "written": s.written,
        "faults": s.faults,
        "per_family": {f: c.as_dict() for f, c in s.per_family.items()},
    }
