"""A throwaway local `prefect server start`: for the tests, the benchmarks and the UI script.

The server gets its own PREFECT_HOME (its SQLite database lives there) and its own process
group, so stopping it takes down the workers it spawns too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The test session's server: its home, port, process once started, and whether this is
# the fast lane (which starts none). Filled by tests/conftest.py.
SESSION: dict[str, object] = {}


class PrefectServerError(RuntimeError):
    """The server exited or never answered; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, port: int) -> dict[str, str]:
    """This environment pointed at the server on `port` (for it and for its clients)."""
    api = f"http://127.0.0.1:{port}/api"
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        # `server start --port` does not reach the UI's settings: without this the UI in
        # a browser calls the default http://127.0.0.1:4200/api.
        "PREFECT_SERVER_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def start(
    home: Path, port: int, python: str = sys.executable, timeout: float = 180
) -> subprocess.Popen:
    """Start the server on 127.0.0.1:port and return once /api/health answers."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    cmd = [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd,
            env=server_env(home, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PrefectServerError(f"prefect server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise PrefectServerError(f"prefect server did not answer within {timeout:.0f}s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
