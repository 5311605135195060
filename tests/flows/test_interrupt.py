"""Ctrl-C with a configured server (`PREFECT_API_URL`): the command ends within seconds
with one line saying how to resume, its flow run and the task runs it left are Cancelled
(not Crashed: the user stopped it), and what it wrote is whole. (Without a configured
server, tests/flows/test_local_server.py does the same against the local server.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from tests.conftest import ROOT, ensure_server
from tests.ctrl_c import DRAWS, interrupt_sampling
from tests.rows import query_rows

pytestmark = pytest.mark.e2e


def _runs_of(warehouse: str) -> list:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        return [r for r in runs if (r.parameters or {}).get("warehouse") == warehouse]


def _task_states(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        this = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        return [t.state.type.value for t in client.read_task_runs(flow_run_filter=this)]


def test_ctrl_c_cancels_the_run_within_seconds(tmp_path):
    ensure_server()
    wh = str(tmp_path / "wh")
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    assert env.get("PREFECT_API_URL")  # a configured server: the session's
    load = [sys.executable, "-m", "distillery.cli.app", "prompts", "load", "seeds"]
    loaded = subprocess.run([*load, "--warehouse", wh], cwd=ROOT, env=env, capture_output=True)
    assert loaded.returncode == 0, loaded.stderr
    interrupt_sampling(tmp_path / "wh", env)

    runs = [r for r in _runs_of(wh) if r.name.startswith("sample ")]  # not prompts-load
    assert [r.state.type.value for r in runs] == ["CANCELLED"], [r.state for r in runs]
    assert "Ctrl-C" in runs[0].state.message
    states = _task_states(runs[0].id)
    assert states and not {"RUNNING", "CRASHED", "PENDING"} & set(states), states
    kept = query_rows(tmp_path / "wh", "SELECT count(*) AS n FROM samples")[0]["n"]
    assert 0 < kept < DRAWS
    # Nothing half-written: no temporary file left, every data file whole.
    assert not [p for p in (tmp_path / "wh").rglob("*.tmp") if p.is_file()]
    assert not list((tmp_path / "wh" / ".tmp").iterdir())
