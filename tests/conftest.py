"""Shared fixtures: a real Prefect server started when the first test needs one, a fresh
warehouse per test, the CLI (in this process, or as a child), and an S3-compatible server
(moto's) per module for warehouses on object storage.

Two lanes. The fast lane (`make test-fast`: `-m "not e2e and not attack and not slow and
not soak"`) runs no Prefect server, no CLI command and no model; asking for the server
there is an error that names the marker to add. The end-to-end lane (`e2e`) runs stage
commands from their command lines: every one is a Prefect flow run against one `prefect
server start` (SQLite in a temporary PREFECT_HOME) that this process starts on first use
and stops at the end (under `make test` each of pytest-xdist's two workers has its own).
Most run in the test's own process (`run_cli`); the real model's cold path, workers,
Dask, killing, Ctrl-C and the install run as processes. The server's address is set in
the environment before any test module imports Prefect, so this process and every child
talk to it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

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
# A command's terminal width: rich wraps narrow terminals; tables stay on one line.
COLUMNS = "200"


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
    # Bytecode for the checkout's own modules (into its ignored __pycache__ folders): with
    # PYTHONDONTWRITEBYTECODE set, as on the development machine, each of the ~70 Python
    # processes the suite starts (commands, flow-run engines, workers) compiled the ~100
    # modules it imports from source, ~0.3 s apiece. Site-packages are compiled by pip.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


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
    *args: str, warehouse: Path | None = None, timeout: float = 600, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`distillery ARGS`: parsed, run as a Prefect flow run on the session's server and
    reported (output, error line, exit status) exactly as the command line does.

    In this process by default (`cli.app.run`): a command started as a process pays ~4 s
    of importing torch, transformers and Prefect before any work, most of the end-to-end
    lane's time. `process=True` runs it as a user does, in a child process, for what only
    a process shows: a real model's path from a cold start, workers in other processes.
    Killing, Ctrl-C, the install and imports have their own process tests. `timeout`
    bounds the child process only.
    """
    ensure_server()
    argv = [*args, *(["--warehouse", str(warehouse)] if warehouse is not None else [])]
    if not process:
        return _run_here(argv)
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    env["COLUMNS"] = COLUMNS
    cmd = [sys.executable, "-m", "distillery.cli.app", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def _run_here(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`run_cli` in this process, in a child's surroundings: no DISTILLERY_WAREHOUSE, a
    wide terminal, the checkout as working directory, and the run's logs on the server
    when it returns (a process sends them as it exits)."""
    from prefect.logging.handlers import APILogWorker

    from distillery.cli import app as cli_app
    from distillery.console.terminal import console as terminal_console

    out, err = io.StringIO(), io.StringIO()
    consoles = (cli_app.console, cli_app.err_console)
    # What the command's import step freezes (`flows.runtime.paused_collector`) is thawed
    # after it, and the garbage of earlier tests collected before it: frozen, a test's
    # leftovers would stay in this process for good.
    gc.collect()
    try:
        with (
            mock.patch.dict(os.environ, {"COLUMNS": COLUMNS}),
            contextlib.chdir(ROOT),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            os.environ.pop("DISTILLERY_WAREHOUSE", None)
            # Made here, as at a process's start: the module's own took the width of
            # whatever terminal this process had when it was imported.
            cli_app.console, cli_app.err_console = terminal_console(), terminal_console(stderr=True)
            code = cli_app.run(argv)
            APILogWorker.drain_all(timeout=30)
    finally:
        cli_app.console, cli_app.err_console = consoles
        gc.unfreeze()
    return subprocess.CompletedProcess(["distillery", *argv], code, out.getvalue(), err.getvalue())


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
