"""One cgroup per program slot: memory and pids for the whole program, a CPU share, kill-all.

rlimits bind each process; a program is a tree of them. Each slot gets a cgroup of its own
under the sandbox's (`distillery-<block>`, below the cgroup this process runs in): memory
(and swap) capped at the program's limit, pids capped at its process budget, a CPU
share under contention (equal, but BOOST times larger once a program has run a while: see
`Slots.boost`), and a freezer to stop a tree before killing it. The sandbox's own cgroup
caps the memory of all programs together at workers x limit. Uses cgroup v1 controllers
where mounted (memory, pids, cpu, freezer), else cgroup v2 where its controllers can be
delegated; `Cgroups.create` returns None when neither is usable, and `distillery doctor`
says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")
V2_CONTROLLERS = ("memory", "pids", "cpu")
FREEZE_WAIT_S = 1.0
# How many times a program's CPU share grows once it has run a while (`Slots.boost`).
BOOST = 8


class CgroupError(OSError):
    """A cgroup could not be made or written."""


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root, fstype, options) of every cgroup mount of this process."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                out.append((fields[4], fields[3], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def _under(mount: str, root: str, path: str) -> Path:
    rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
    return Path(mount) / ("" if rel == "." else rel)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(exc.errno, f"{path}: {exc.strerror}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@dataclass
class Cgroups:
    """The sandbox's cgroups: `dirs` holds its directory in each controller."""

    version: str  # "v1" | "v2"
    dirs: dict[str, Path]
    memory_bytes: int
    processes: int
    slots: set[int] = field(default_factory=set)

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(self.dirs)

    @classmethod
    def create(cls, name: str, memory_mb: int, processes: int, workers: int) -> Cgroups | None:
        """The sandbox's cgroups, or None where this host gives none we may use."""
        if os.geteuid() != 0:
            return None
        own = _own_paths()
        mounts = _mounts()
        v1 = {}
        for mount, root, fstype, opts in mounts:
            for ctrl in V1_CONTROLLERS:
                if fstype == "cgroup" and ctrl in opts and ctrl in own:
                    v1[ctrl] = _under(mount, root, own[ctrl]) / name
        if {"memory", "pids"} <= set(v1):
            made = cls("v1", v1, memory_mb << 20, processes)
        else:
            v2 = [(m, r) for m, r, fstype, _ in mounts if fstype == "cgroup2"]
            if not v2 or "" not in own:
                return None
            base = _under(v2[0][0], v2[0][1], own[""])
            available = set(_read(base / "cgroup.controllers").split())
            if not set(V2_CONTROLLERS) <= available:
                return None
            made = cls("v2", {"unified": base / name}, memory_mb << 20, processes)
        try:
            made._make_top(workers)
        except OSError:
            made.close()
            return None
        return made

    def _make_top(self, workers: int) -> None:
        for ctrl, d in self.dirs.items():
            if d.exists():
                self._sweep(d)  # left by a sandbox that died holding the same name
            d.mkdir(exist_ok=True)
            if ctrl == "memory":
                _write(d / "memory.limit_in_bytes", str(workers * self.memory_bytes))
            if ctrl == "cpu":
                # The sandbox's group competes with each of the host's tasks as one: weigh it
                # as `workers` tasks, as its programs weighed before they had a group.
                _write(d / "cpu.shares", str(1024 * workers))
            if ctrl == "unified":
                _write(
                    d.parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS)
                )
                _write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS))
                _write(d / "memory.max", str(workers * self.memory_bytes))
                _write(d / "cpu.weight", str(min(10_000, 100 * workers)))

    def add_slot(self, slot: int) -> None:
        """Make (or reset) slot's cgroup with the program limits."""
        for ctrl, d in self.dirs.items():
            s = d / f"slot-{slot}"
            s.mkdir(exist_ok=True)
            if ctrl == "memory":
                _write(s / "memory.limit_in_bytes", str(self.memory_bytes))
                if (s / "memory.memsw.limit_in_bytes").exists():
                    _write(s / "memory.memsw.limit_in_bytes", str(self.memory_bytes))
            elif ctrl == "pids":
                _write(s / "pids.max", str(self.processes + 1))  # + the slot's server
            elif ctrl == "unified":
                _write(s / "memory.max", str(self.memory_bytes))
                with contextlib.suppress(CgroupError):
                    _write(s / "memory.swap.max", "0")
                _write(s / "pids.max", str(self.processes + 1))
        # Equal shares: under contention a program of 16 spinning processes gets the same
        # CPU as an honest one of a single process.
        self.weigh(slot, 1)
        self.slots.add(slot)

    @property
    def weighs(self) -> bool:
        """Whether programs have CPU shares here (the cpu controller, v1 or v2)."""
        return "cpu" in self.dirs or "unified" in self.dirs

    def weigh(self, slot: int, factor: int) -> None:
        """Give the slot's program `factor` times one program's CPU share."""
        if "cpu" in self.dirs:
            _write(self.dirs["cpu"] / f"slot-{slot}" / "cpu.shares", str(1024 * factor))
        elif "unified" in self.dirs:
            _write(self.dirs["unified"] / f"slot-{slot}" / "cpu.weight", str(100 * factor))

    def open_dirs(self) -> list[int]:
        """Directory descriptors the zygote keeps: its clones join `slot-N` through them."""
        return [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in self.dirs.values()]

    def procs(self, slot: int, server: int | None = None) -> list[int]:
        """Pids (as this process sees them) in the slot's cgroup, but for its server."""
        d = next(iter(self.dirs.values())) / f"slot-{slot}"
        return [int(p) for p in _read(d / "cgroup.procs").split() if int(p) != server]

    def oom_kills(self, slot: int) -> int:
        """How many processes the kernel killed in the slot for memory, so far."""
        if "memory" in self.dirs:
            text = _read(self.dirs["memory"] / f"slot-{slot}" / "memory.oom_control")
        elif "unified" in self.dirs:
            text = _read(self.dirs["unified"] / f"slot-{slot}" / "memory.events")
        else:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def memory_peak(self) -> int | None:
        """The most memory all programs held together, in bytes."""
        if "memory" in self.dirs:
            text = _read(self.dirs["memory"] / "memory.max_usage_in_bytes")
        elif "unified" in self.dirs:
            text = _read(self.dirs["unified"] / "memory.peak")
        else:
            return None
        return int(text) if text.strip() else None

    def kill_all(self, slot: int, server: int | None = None) -> bool:
        """Kill every process in the slot but its server (`server`, None: all), frozen
        first so none can fork meanwhile; True when nothing else is left in it."""
        if "unified" in self.dirs and server is None:
            s = self.dirs["unified"] / f"slot-{slot}"
            with contextlib.suppress(CgroupError):
                _write(s / "cgroup.kill", "1")
        else:
            freezer = self.dirs.get("freezer")
            state = freezer / f"slot-{slot}" / "freezer.state" if freezer else None
            if state is not None:
                with contextlib.suppress(CgroupError):
                    _write(state, "FROZEN")
                    deadline = time.monotonic() + FREEZE_WAIT_S
                    while _read(state).strip() != "FROZEN" and time.monotonic() < deadline:
                        time.sleep(0.01)
            for pid in self.procs(slot, server):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if state is not None:
                with contextlib.suppress(CgroupError):
                    _write(state, "THAWED")
        deadline = time.monotonic() + FREEZE_WAIT_S
        while self.procs(slot, server) and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.procs(slot, server)

    def _sweep(self, d: Path) -> None:
        for child in d.glob("slot-*"):
            with contextlib.suppress(ValueError):
                self.kill_all(int(child.name.split("-", 1)[1]))
            with contextlib.suppress(OSError):
                child.rmdir()

    def close(self) -> None:
        """Kill what is left, then remove the slots and the sandbox's own cgroups."""
        for slot in sorted(self.slots):
            self.kill_all(slot)
        for d in self.dirs.values():
            for slot in sorted(self.slots):
                with contextlib.suppress(OSError):
                    (d / f"slot-{slot}").rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()
        self.slots.clear()
