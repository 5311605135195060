"""Check each isolation layer by what a program can actually do, for `distillery doctor`.

One probe program runs in the sandbox and reports what it sees: which host paths exist,
where it can create a file, its namespaces, uid and cgroups, and what the kernel answers
to a user namespace, `clone3`, a socket and a mount. Each layer is then judged here, from
the outside, against what this process sees.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.filters.base import Verdict
from distillery.filters.sandbox.runner import Sandbox

PROBE = r"""
import ctypes, errno, os

def probe(paths, tries):
    libc = ctypes.CDLL(None, use_errno=True)
    out = {"pid": os.getpid(), "uid": os.getuid()}
    out["exists"] = [p for p in paths if os.path.lexists(p)]
    written = []
    for d in tries:
        try:
            fd = os.open(os.path.join(d, ".probe"), os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            written.append(d)
        except OSError:
            pass
    out["written"] = written
    out["ns"] = {n: os.readlink("/proc/self/ns/" + n) for n in ("pid", "mnt", "ipc", "uts", "net")}
    out["cgroup"] = open("/proc/self/cgroup").read()

    def err(rc):
        return 0 if rc >= 0 else ctypes.get_errno()

    out["clone_newuser"] = err(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
    out["clone3"] = err(libc.syscall(435, 0, 0))
    out["socket"] = err(libc.socket(2, 1, 0))
    out["mount"] = err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    out["fsopen"] = err(libc.syscall(430, b"tmpfs", 0))
    out["fuse"] = os.path.exists("/dev/fuse")
    return out
"""


@dataclass(frozen=True)
class Check:
    layer: str
    ok: bool
    detail: str = ""


def _host_paths(allowed: list[str]) -> list[str]:
    """Host paths a program must not see: the project, its .git, the home directory's
    entries, /etc, /run, /sys. Directories on the way to an allowed path (the home of
    an interpreter installed there) exist, empty but for that way: not listed here.
    `allowed` is the sandbox root's allowed paths."""
    root = Path(__file__).resolve().parents[2]
    home = Path.home()
    paths = [root / "pyproject.toml", root / ".git", root / "tasks", Path.cwd()]
    paths += [Path(p) for p in ("/etc/passwd", "/etc/hostname", "/run", "/sys", "/var")]
    with contextlib.suppress(OSError):
        paths += sorted(home.iterdir())[:50]
    return sorted(
        {
            str(p)
            for p in paths
            if p.exists() and not any(a == str(p) or a.startswith(f"{p}/") for a in allowed)
        }
    )


def probe(sb: Sandbox) -> dict[str, Any]:
    """What the probe program reports from inside `sb` (empty when it could not run)."""
    seen: list[Any] = []
    tries = ["/", "/dev", "/usr", "/root", "/proc", "/dev/shm", "/tmp", "/var/tmp", "/run/lock"]

    def driver(call: Any) -> Verdict:
        seen.append(call(_host_paths([p for p, _ in (sb.root_plan or {}).get("binds", [])]), tries))
        return Verdict.ok()

    verdict = sb.run(PROBE, "probe", driver)
    return seen[0] if verdict.passed and seen else {"error": verdict.detail}


def check(sb: Sandbox) -> list[Check]:
    """Each layer, judged by the probe's report."""
    r = probe(sb)
    if "error" in r:
        return [Check("probe program", False, str(r["error"]))]
    mine = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "mnt", "ipc", "uts", "net")}
    shared = [n for n in mine if r["ns"].get(n) == mine[n]]
    cg = sb.cgroups
    in_slot = [line for line in r["cgroup"].splitlines() if "/slot-" in line]
    controllers = set(cg.controllers) if cg else set()
    v2 = "unified" in controllers

    def has(ctrl: str) -> bool:
        return v2 or ctrl in controllers

    written_elsewhere = [d for d in r["written"] if d not in ("/tmp", "/dev/shm")]
    return [
        Check(
            "allowlisted read-only root",
            sb.layers.root and not r["exists"],
            "sees " + ", ".join(r["exists"])
            if r["exists"]
            else "no project, .git, home, /etc, /run",
        ),
        Check(
            "writable: only the program's own tmpfs",
            not written_elsewhere,
            "also " + ", ".join(written_elsewhere)
            if written_elsewhere
            else "/tmp (and /dev/shm -> /tmp)",
        ),
        Check(
            "pid namespace per program (kill one, kill all)",
            r["pid"] == 1 and "pid" not in shared,
            f"pid {r['pid']}",
        ),
        Check(
            "mount, IPC and UTS namespaces per program",
            not {"mnt", "ipc", "uts"} & set(shared),
            "shared: " + ", ".join(shared) if shared else "own",
        ),
        Check("network namespace (no devices)", "net" not in shared),
        Check(
            "unprivileged uid from a block of its own",
            r["uid"] in sb.uid_range and r["uid"] != 0,
            f"uid {r['uid']} in {sb.uid_range.start}..{sb.uid_range.stop - 1}",
        ),
        Check(
            "seccomp allowlist",
            r["clone_newuser"] == 1
            and r["clone3"] == 38
            and r["socket"] == 1
            and r["mount"] == 1
            and r["fsopen"] == 1,
            "user namespace, socket, mount, fsopen refused; clone3 ENOSYS"
            if r["clone3"] == 38
            else f"errnos {r['clone_newuser']}, {r['clone3']}, {r['socket']}, {r['mount']}",
        ),
        Check("no /dev/fuse", not r["fuse"]),
        Check(
            "cgroup memory per program (and workers x limit in all)",
            has("memory") and bool(in_slot),
            f"cgroup {cg.version}" if cg else "no cgroups: per-process rlimits only",
        ),
        Check("cgroup pids per program", has("pids") and bool(in_slot)),
        Check("cgroup CPU share per program", has("cpu") and bool(in_slot)),
        Check("cgroup kill-all", v2 or "freezer" in controllers),
        Check("rlimits per process (memory, CPU, file size, open files)", True),
        Check("wall-clock deadline; no wait without one", True),
    ]
