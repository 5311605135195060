"""Reading what a flow run left on the session's Prefect server (tests only)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)

RUN_LINK = re.compile(r"flow run: \S*/runs/flow-run/([0-9a-f-]{36})")


@dataclass(frozen=True)
class Run:
    id: UUID
    flow: str
    state: str
    name: str = ""  # the flow run's name


def run_id_from(stdout: str) -> UUID:
    """The flow run id the CLI printed."""
    m = RUN_LINK.search(stdout)
    assert m, f"no flow run link in the output:\n{stdout[-2000:]}"
    return UUID(m.group(1))


def flow_run(run_id: UUID) -> Run:
    with get_client(sync_client=True) as c:
        r = c.read_flow_run(run_id)
        return Run(r.id, c.read_flow(r.flow_id).name, r.state.name if r.state else "", r.name)


def children(run_id: UUID) -> list[Run]:
    """Child flow runs (the stages of a pipeline), oldest first."""
    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])
            )
        )
        runs = sorted(runs, key=lambda r: r.start_time or r.created)
        return [
            Run(r.id, c.read_flow(r.flow_id).name, r.state.name if r.state else "", r.name)
            for r in runs
        ]


def artifacts(run_id: UUID) -> dict[str, tuple[str, Any]]:
    """key → (type, data) of the artifacts a flow run (or its tasks) made."""
    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
        # Tables are stored as JSON text.
        return {
            a.key: (a.type, json.loads(a.data) if a.type == "table" else a.data)
            for a in found
            if a.key
        }


def workers(pool: str) -> list[str]:
    """Names of the workers that have reported to a work pool (each heartbeats once on
    start, before it first asks for runs)."""
    with get_client(sync_client=True) as c:
        return sorted(w.name for w in c.read_workers_for_work_pool(work_pool_name=pool))


def task_runs(run_id: UUID) -> list[tuple[str, str]]:
    """(task name, state) of a flow run's task runs."""
    from prefect.client.schemas.filters import FlowRunFilterId

    with get_client(sync_client=True) as c:
        trs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        return sorted((t.name.rsplit("-", 1)[0], t.state.name if t.state else "") for t in trs)


def logs(run_id: UUID) -> list[str]:
    """The messages in a flow run's Logs tab, oldest first."""
    with get_client(sync_client=True) as c:
        found = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return [entry.message for entry in sorted(found, key=lambda e: e.timestamp)]
