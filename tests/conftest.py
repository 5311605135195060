"""Shared fixtures: a real Prefect server started when the first test needs one, a fresh
warehouse per test, the CLI as a subprocess, and an S3-compatible server (moto's) per
module for warehouses on object storage.

Two lanes. The fast lane (`make test-fast`: `-m "not e2e and not attack and not slow and
not soak"`) runs no Prefect server, no CLI process and no model; asking for the server
there is an error that names the marker to add. The end-to-end lane (`e2e`) runs stage commands as a
user does: every one is a Prefect flow run against one `prefect server start` (SQLite in a
temporary PREFECT_HOME) that this process starts on first use and stops at the end (under
`make test` each of pytest-xdist's two workers has its own). Its address is set in the
environment before any test module imports Prefect, so this process and every CLI child
talk to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from distillery.warehouse.store import Warehouse
from tests import prefect_server
from tests import s3_server as s3

ROOT = Path(__file__).resolve().parents[1]
# In `tests.prefect_server`, not here: pytest loads this file as `conftest` and tests import
# it as `tests.conftest`, two modules; the session's server must be one.
_SERVER = prefect_server.SESSION
# `generators.threads.ENV`, named here without importing torch into every pytest process.
THREADS_ENV = "DISTILLERY_THREADS"


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="distillery-prefect-"))
    port = prefect_server.free_port()
    _SERVER.update(home=home, port=port, fast="not e2e" in (config.option.markexpr or ""))
    os.environ.update(prefect_server.server_env(home, port))
    # One torch thread per process, for this process and every command it starts: two
    # workers already keep both cores busy, and measuring the count (`generators.threads`)
    # costs each sampling or training command seconds (7 s of a 40 s LoRA `train rsft`).
    # The measurement has its own tests (tests/generators/test_threads.py), and the
    # install test's demo runs without this, as a user's does. A value set outside wins.
    os.environ.setdefault(THREADS_ENV, "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _SERVER.get("proc")
    if isinstance(proc, subprocess.Popen):
        prefect_server.stop(proc)
    home = _SERVER.get("home")
    if isinstance(home, Path):
        shutil.rmtree(home, ignore_errors=True)


def ensure_server() -> None:
    """Start the session's Prefect server unless it runs already."""
    if "proc" in _SERVER:
        return
    if _SERVER["fast"]:
        raise RuntimeError(
            "this test needs the Prefect server: mark it `pytest.mark.e2e` (the fast lane "
            "runs none)"
        )
    home, port = _SERVER["home"], _SERVER["port"]
    assert isinstance(home, Path) and isinstance(port, int)
    _SERVER["proc"] = prefect_server.start(home, port)


@pytest.fixture
def server() -> None:
    """A real Prefect server for in-process flow runs (the session's, started on first use)."""
    ensure_server()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free port, with the AWS environment (of this process and of
    every child it starts) pointing at it; yields its endpoint. One per test module."""
    with s3.running(tmp_path_factory.mktemp("side")) as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_server: str) -> str:
    """A new, empty bucket on the module's S3 server."""
    return s3.new_bucket(s3_server)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse.open(tmp_path / "wh")


def run_cli(
    *args: str, warehouse: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`distillery ARGS` in a child process, the way a user runs it."""
    ensure_server()
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    env["COLUMNS"] = "200"  # rich wraps narrow terminals; keep tables on one line
    cmd = [sys.executable, "-m", "distillery.cli.app", *args]
    if warehouse is not None:
        cmd += ["--warehouse", str(warehouse)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A background child in its own process group (so killpg reaches all it started)."""
    ensure_server()
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
