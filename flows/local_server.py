"""One local Prefect server for every command, started on first use and reused.

Without a configured server (`PREFECT_API_URL` in the environment or the active profile)
Prefect starts a temporary server inside each command: 20-30 s on a 2-core host before any
work, none of the runs survive the command, and Ctrl-C in a terminal reaches that server
too, so the command then hangs reporting its end to a server that is gone. Instead the
first command starts `prefect server start` in its own session (the terminal's signals do
not reach it) with its own home, records its address, and every later command uses it:
the UI keeps every run. `distillery server status|stop` shows or ends it;
`DISTILLERY_LOCAL_SERVER=0` keeps Prefect's temporary server per command.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "DISTILLERY_SERVER_HOME"
OPT_OUT_ENV = "DISTILLERY_LOCAL_SERVER"
STARTUP_S = 180.0


class LocalServerError(RuntimeError):
    """The local server would not start; the message says where its log is."""


@dataclass(frozen=True)
class LocalServer:
    url: str  # the API, http://127.0.0.1:PORT/api
    pid: int
    home: Path

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".distillery" / "server")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(where: Path) -> LocalServer | None:
    try:
        state = json.loads((where / "server.json").read_text())
        return LocalServer(state["url"], int(state["pid"]), where)
    except (OSError, ValueError, KeyError):
        return None


def running(where: Path | None = None) -> LocalServer | None:
    """The recorded local server if it answers."""
    server = _read(where or home())
    return server if server is not None and _healthy(server.url) else None


def _start(where: Path, say: Callable[[str], None] | None) -> LocalServer:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(where / "prefect"),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_UI_API_URL": url,  # the UI in a browser calls this port, not :4200
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    log = where / "server.log"
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: a Ctrl-C in the terminal spares it
        )
    if say is not None:
        ui = url.removesuffix("/api")
        say(f"starting a local Prefect server at {ui} (`distillery server stop` ends it)")
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServerError(f"the local Prefect server exited; see {log}")
        if _healthy(url):
            server = LocalServer(url, proc.pid, where)
            tmp = where / f"server.json.{os.getpid()}"
            tmp.write_text(json.dumps({"url": url, "pid": proc.pid}))
            os.replace(tmp, where / "server.json")
            return server
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    raise LocalServerError(
        f"the local Prefect server did not answer in {STARTUP_S:.0f} s; see {log}"
    )


def ensure(say: Callable[[str], None] | None = None) -> LocalServer:
    """The running local server, started if there is none (one at a time, under a lock)."""
    where = home()
    where.mkdir(parents=True, exist_ok=True)
    with open(where / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once start one server
        return running(where) or _start(where, say)


def stop(where: Path | None = None) -> LocalServer | None:
    """End the recorded local server (and the workers it spawned); returns what it ended."""
    where = where or home()
    server = _read(where)
    if server is None:
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(server.pid):
            time.sleep(0.2)
        if _alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
    (where / "server.json").unlink(missing_ok=True)
    return server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not yet reaped) counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def wanted() -> bool:
    """Whether this process should use the local server: no server configured, no opt-out."""
    if os.environ.get(OPT_OUT_ENV) == "0":
        return False
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()
