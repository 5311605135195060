"""Shared fixtures: a real Prefect server for the session, a fresh warehouse per test, and
the CLI as a subprocess.

Every stage command is a Prefect flow run. The session starts one `prefect server start`
(SQLite in a temporary PREFECT_HOME) before any test module imports Prefect, and points
this process and every CLI child at it, so no test starts a temporary server of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from distillery.warehouse.store import Warehouse
from tests import prefect_server

ROOT = Path(__file__).resolve().parents[1]
_SERVER: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="distillery-prefect-"))
    port = prefect_server.free_port()
    _SERVER["proc"] = prefect_server.start(home, port)
    _SERVER["home"] = home
    os.environ.update(prefect_server.server_env(home, port))


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _SERVER.get("proc")
    if isinstance(proc, subprocess.Popen):
        prefect_server.stop(proc)
    home = _SERVER.get("home")
    if isinstance(home, Path):
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse.open(tmp_path / "wh")


def run_cli(
    *args: str, warehouse: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`distillery ARGS` in a child process, the way a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    env["COLUMNS"] = "200"  # rich wraps narrow terminals; keep tables on one line
    cmd = [sys.executable, "-m", "distillery.cli.app", *args]
    if warehouse is not None:
        cmd += ["--warehouse", str(warehouse)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A background child in its own process group (so killpg reaches all it started)."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env if env is not None else dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def cli():
    return run_cli
