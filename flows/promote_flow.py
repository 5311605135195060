"""The `promote` flow: the promotion gate on held-out evals (`distillery promote`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow

from distillery.evals.gate_config import PromoteConfig
from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@flow(name="promote", flow_run_name=run_name("promote", "config.model", "parent=config.parent"))
def promote_flow(
    config: PromoteConfig,
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """The promotion gate on held-out evals (a paired bootstrap of per-prompt pass@1);
    the decision goes to `promotions`."""
    from distillery.evals.gate import promote_stage

    c = config
    decision, record = promote_stage(c, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "promotion-decision",
        artifacts.promotion_md(c.model, decision.promoted, decision.numbers, decision.reasons),
    )
    return {
        "promoted": decision.promoted,
        "reasons": list(decision.reasons),
        "numbers": json.loads(record.numbers),
        "promotion_id": record.promotion_id,
    }
