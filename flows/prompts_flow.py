"""The `prompts-load` flow: a task suite into the warehouse (`distillery prompts load`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from distillery.flows import artifacts
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name


@flow(name="prompts-load", flow_run_name=run_name("prompts-load", "source", "suite"))
def prompts_flow(
    source: str = "seeds", suite: str | None = None, warehouse: str = "warehouse-data"
) -> dict[str, Any]:
    """Load a suite (seeds | humaneval | FILE.jsonl | FILE.parquet) into the warehouse."""
    from distillery.tasks.prompts_stage import prompts_job

    loaded = prompts_job(source, suite, Path(warehouse), stage_console())
    artifacts.publish_markdown(
        "prompts-summary",
        f"## Suite {loaded.suite}\n\n{loaded.new} new prompts, "
        f"{loaded.total - loaded.new} already loaded.\n\n"
        + artifacts.md_table(
            ["family", "train", "test"],
            ((f, c["train"], c["test"]) for f, c in loaded.per_family_split.items()),
        ),
    )
    return asdict(loaded)
