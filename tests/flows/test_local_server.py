"""Without a configured server, commands share one local Prefect server (started on first
use, in its own session) and Ctrl-C stops a command within seconds, leaving a run that the
same command resumes. Real processes: `distillery` as a user runs it, no shared test server."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.ctrl_c import DRAWS, SAMPLE, interrupt_sampling
from tests.rows import query_rows

pytestmark = pytest.mark.e2e

LINK = re.compile(r"flow run: http://127\.0\.0\.1:(\d+)/runs/flow-run/")


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "profile"),  # no profile naming a server either
        "DISTILLERY_SERVER_HOME": str(tmp_path / "server"),
        "COLUMNS": "200",
    }
    return env


def _cli(env, *args, **kw):
    cmd = [sys.executable, "-m", "distillery.cli.app", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, **kw)


def test_commands_share_a_local_server_and_ctrl_c_stops_within_seconds(tmp_path):
    env, wh = _env(tmp_path), str(tmp_path / "wh")
    try:
        first = _cli(env, "prompts", "load", "seeds", "--warehouse", wh, timeout=600)
        assert first.returncode == 0, first.stderr
        assert "starting a local Prefect server at http://127.0.0.1:" in first.stdout
        port = LINK.search(first.stdout).group(1)
        again = _cli(env, "prompts", "load", "seeds", "--warehouse", wh, timeout=600)
        assert again.returncode == 0, again.stderr
        assert "starting a local Prefect server" not in again.stdout
        assert LINK.search(again.stdout).group(1) == port  # the same server, reused
        status = _cli(env, "server", "status", timeout=60)
        assert status.returncode == 0 and f"http://127.0.0.1:{port}" in status.stdout

        # Ctrl-C, as a terminal sends it: SIGINT to the command's whole process group.
        interrupt_sampling(tmp_path / "wh", env)
        kept = query_rows(tmp_path / "wh", "SELECT count(*) AS n FROM samples")[0]["n"]
        assert 0 < kept < DRAWS
        # The server was spared; the same command resumes and finishes what is missing.
        assert _cli(env, "server", "status", timeout=60).returncode == 0
        resumed = _cli(env, *SAMPLE, "--warehouse", wh, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        assert f"{kept} already in the warehouse, {DRAWS - kept} written" in resumed.stdout
        ids = query_rows(tmp_path / "wh", "SELECT count(DISTINCT sample_id) AS n FROM samples")
        assert ids == [{"n": DRAWS}]
    finally:
        stopped = _cli(env, "server", "stop", timeout=120)
    assert stopped.returncode == 0 and "stopped the local Prefect server" in stopped.stdout
    assert _cli(env, "server", "status", timeout=60).returncode == 1
