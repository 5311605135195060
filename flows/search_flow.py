"""The `search` flow: verified targets by best-of-N, a prompted context, validate-and-retry
(`distillery search`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.generators.search_config import SearchConfig
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


@flow(
    name="search",
    flow_run_name=run_name(
        "search", "config.model", "config.suite/config.split", "config.procedures"
    ),
)
def search_flow(
    config: SearchConfig = SearchConfig(),  # noqa: B008 - frozen, so one shared default is safe
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Find verified targets: best-of-N, a prompted context, validate-and-retry, adaptive n."""
    from distillery.generators.search_stage import search_stage

    s = search_stage(config, Path(warehouse), stage_console())
    rows = [
        {"family": f, "prompts": c["prompts"], "solved": c["solved"], "completions": c["spent"]}
        for f, c in s.per_family.items()
    ]
    artifacts.publish_markdown(
        "search-summary",
        f"## Search {'+'.join(config.procedures)} on {config.suite}/{config.split}\n\n"
        f"**{s.solved}/{s.prompts}** prompts solved with a budget of {config.budget} "
        f"completions ({s.spent} looked at, {s.written} new, {s.waves} waves); passing "
        f"answers by procedure: {dict(s.passes) or 'none'}.\n\n"
        + artifacts.md_table(
            ["family", "prompts", "solved", "completions"], (tuple(r.values()) for r in rows)
        ),
    )
    return {
        "prompts": s.prompts,
        "solved": s.solved,
        "spent": s.spent,
        "written": s.written,
        "waves": s.waves,
        "passes": dict(s.passes),
        "per_family": {f: dict(c) for f, c in s.per_family.items()},
    }
