"""`distillery serve`: every flow as a deployment of one long-running process, three on a
schedule.

Scheduled: `sample-and-verify/nightly` (samples whatever prompts still lack samples, then
verifies), `compact/daily` (merges each run's small Parquet files into one, after the
nightly run has added its files) and `bake/weekly`. Every other flow is served
unscheduled, so it can be run from the UI's form. For deployments that run on a work
pool's workers instead of in this process, see `prefect.yaml` at the repository root
(`prefect deploy --all`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.config.groups import DEFAULT_MODEL
from distillery.warehouse.location import parse

TAGS = ["distillery"]
ON_DEMAND = "on-demand"


@dataclass(frozen=True)
class Schedules:
    """What `distillery serve` schedules: the crons, and the model and suite they run on."""

    nightly: str = "0 2 * * *"  # sample and verify
    weekly: str = "0 4 * * 0"  # bake one round
    compact: str = "0 3 * * *"  # merge small files (a local warehouse only)
    model: str = DEFAULT_MODEL
    suite: str = "seeds"
    paused: bool = False  # register the schedules paused


def deployments(schedules: Schedules, warehouse: str) -> list[Any]:
    from distillery.flows.bake_flow import bake_flow, sample_verify_flow
    from distillery.flows.compact_flow import compact_flow
    from distillery.flows.sample_flow import sample_flow, sample_shard_flow
    from distillery.flows.stage_flows import (
        dpo_flow,
        eval_flow,
        import_flow,
        pairs_flow,
        promote_flow,
        prompts_flow,
        report_flow,
        rsft_flow,
        search_flow,
        select_flow,
        verify_flow,
    )

    # Served flows run in this process, whose working directory may differ from the
    # caller's: the warehouse is always absolute (a URL on object storage already is).
    location = parse(warehouse)
    root = str(Path(warehouse).resolve()) if location.is_local else location.url
    common = {"warehouse": root}
    scheduled = [
        sample_verify_flow.to_deployment(
            "nightly",
            cron=schedules.nightly,
            paused=schedules.paused,
            tags=TAGS,
            parameters={
                **common,
                "config": {"model": schedules.model, "suite": schedules.suite, "n": 8},
            },
            description="Sample prompts that lack samples, then verify them.",
        ),
        bake_flow.to_deployment(
            "weekly",
            cron=schedules.weekly,
            paused=schedules.paused,
            tags=TAGS,
            parameters={
                **common,
                "config": {
                    "model": schedules.model,
                    "suite": schedules.suite,
                    "name": f"{schedules.model}-weekly",
                },
            },
            description="Sample, verify, train, evaluate and gate one round.",
        ),
    ]
    if location.is_local:  # compaction refuses object storage (warehouse/compact.py)
        scheduled.append(
            compact_flow.to_deployment(
                "daily",
                cron=schedules.compact,
                paused=schedules.paused,
                tags=TAGS,
                parameters=common,
                description="Merge each run's small Parquet files into one (safe beside writers).",
            )
        )
    stages = [
        prompts_flow,
        import_flow,
        sample_flow,
        search_flow,
        verify_flow,
        select_flow,
        pairs_flow,
        rsft_flow,
        dpo_flow,
        eval_flow,
        promote_flow,
        report_flow,
        bake_flow,
        sample_shard_flow,
    ]
    on_demand = [
        f.to_deployment(ON_DEMAND, tags=TAGS, parameters=common)
        if f is not sample_shard_flow
        else f.to_deployment(ON_DEMAND, tags=TAGS)
        for f in stages
    ]
    return scheduled + on_demand


def serve_deployments(schedules: Schedules, warehouse: str) -> None:
    from prefect import serve

    serve(*deployments(schedules, warehouse))
