"""Shared fixtures: a real Prefect server for the session, a fresh warehouse per test, and
the CLI as a subprocess.

Every stage command is a Prefect flow run. The session starts one `prefect server start`
(SQLite in a temporary PREFECT_HOME) before any test module imports Prefect, and points
this process and every CLI child at it, so no test starts a temporary server of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]
_SERVER: dict[str, object] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prefect_server(home: Path, port: int, timeout: float = 180) -> subprocess.Popen:
    """`prefect server start` on 127.0.0.1:port with its database under `home`."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"prefect server did not answer within {timeout}s")


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="distillery-prefect-"))
    port = free_port()
    _SERVER["proc"] = start_prefect_server(home, port)
    _SERVER["home"] = home
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _SERVER.get("proc")
    if isinstance(proc, subprocess.Popen):
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
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
    cmd = [sys.executable, "-m", "flows.cli", *args]
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
