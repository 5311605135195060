"""Program slots: a uid range no other sandbox on the host uses, and slots that never hang.

A slot is a uid (its own RLIMIT_NPROC budget) and a cgroup. Each sandbox takes a block of
`BLOCK` uids by holding an exclusive `flock` on that block's lock file, so two sandboxes,
two flows or two workers on one host never run programs under the same uid; the lock goes
with the process that held it, however it ends.

A slot is handed out for one program and comes back only when its exit has been reported
and its cgroup is empty. A program that does not go away after its kill (a process stuck
in the kernel, which even SIGKILL cannot end) is killed again by cgroup; if it still
lingers its slot is retired, reported, and replaced by a fresh one, so verification goes
on. Taking a slot waits with a deadline, never forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from distillery.filters.sandbox.cgroup import BOOST, CgroupError, Cgroups

log = logging.getLogger(__name__)
UID_BASE = 1_900_000_000  # far above login, system, container and dynamic uid ranges
BLOCK = 1024  # uids per sandbox; the last one is for the zygote's start-up probe
BLOCKS = 4096
EXIT_GRACE_S = 5.0  # after a kill, how long a program may take to be reported gone
RETIRE_AFTER_S = 10.0  # after a kill by cgroup, how long before its slot is given up


def lock_dirs() -> tuple[str, ...]:
    """Where uid-block locks live. Root's sandboxes share one set (they share the uids);
    another user's programs run as that user, so its blocks only name its cgroups and its
    locks sit in a directory of its own."""
    euid = os.geteuid()
    if euid == 0:
        return ("/run/distillery/uids", os.path.join(tempfile.gettempdir(), "distillery-uids"))
    return (os.path.join(tempfile.gettempdir(), f"distillery-uids-{euid}"),)


class SlotError(Exception):
    """No slot came free in time, or no uid block could be had."""


@dataclass
class UidBlock:
    """An exclusively held block of uids: `base` .. `base + BLOCK - 1`."""

    index: int
    fd: int
    path: str  # the lock file: another process that takes it holds these uids

    @property
    def base(self) -> int:
        return UID_BASE + self.index * BLOCK

    @property
    def uids(self) -> range:
        return range(self.base, self.base + BLOCK)

    @property
    def probe_uid(self) -> int:
        return self.base + BLOCK - 1

    @classmethod
    def acquire(cls) -> UidBlock:
        dirs = lock_dirs()
        for d in dirs:
            try:
                os.makedirs(d, mode=0o700, exist_ok=True)
                # Someone else's directory (made first, to be shared): not ours to trust.
                if os.stat(d, follow_symlinks=False).st_uid != os.geteuid():
                    continue
            except OSError:
                continue
            for i in range(BLOCKS):
                path = os.path.join(d, f"block-{i}.lock")
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                except OSError:
                    break  # this directory will not do: try the next
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                os.set_inheritable(fd, False)
                return cls(i, fd, path)
        raise SlotError(f"no free uid block in {', '.join(dirs)}")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass(eq=False)
class _Dying:
    slot: int
    exited: threading.Event | None  # None: reported gone, but its cgroup is not empty
    deadline: float
    cgroup_killed: bool = False


@dataclass
class Slots:
    """`count` slots to start with, more as slots are retired (up to the block's size)."""

    block: UidBlock
    count: int
    cgroups: Cgroups | None = None
    namespaces: bool = True  # whether programs run in their own pid namespaces
    on_new: Callable[[int], None] = lambda slot: None  # start the slot's server
    on_retire: Callable[[int], None] = lambda slot: None  # stop it
    server: Callable[[int], int | None] = lambda slot: None  # its pid: never killed
    retired: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        # Last in, first out: the slot freed last is taken next, its server's memory and
        # page tables still warm in the CPU caches (cloning from a cold one costs more).
        self._free: queue.LifoQueue[int] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._next = 0
        self._oom_seen: dict[int, int] = {}
        self._dying: list[_Dying] = []
        self._boosted: set[int] = set()
        self._wake = threading.Event()
        self._closed = False
        for _ in range(self.count):
            self._free.put(self._new())
        self._watchdog = threading.Thread(target=self._watch, name="sandbox-slots", daemon=True)
        self._watchdog.start()

    def _new(self) -> int:
        with self._lock:
            slot = self._next
            if slot >= BLOCK - 1:
                raise SlotError("every uid of this sandbox's block has been retired")
            self._next += 1
        if self.cgroups is not None:
            self.cgroups.add_slot(slot)
        self._oom_seen[slot] = 0
        self.on_new(slot)
        return slot

    def uid(self, slot: int) -> int:
        return self.block.base + slot

    def take(self, timeout: float) -> int:
        try:
            return self._free.get(timeout=timeout)
        except queue.Empty:
            raise SlotError(f"no sandbox slot came free in {timeout:.0f} s") from None

    def take_nowait(self) -> int | None:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def unused(self, slot: int) -> None:
        """A slot taken but never given a process."""
        self._free.put(slot)

    def oom_killed(self, slot: int) -> bool:
        """Whether the kernel killed a process in the slot for memory since this was last
        asked (asked only when a program died, so each kill is seen once). A kill of a
        child that its program survived is seen by the slot's next death instead: a reason
        code off, never a verdict (both fail)."""
        if self.cgroups is None:
            return False
        kills = self.cgroups.oom_kills(slot)
        seen, self._oom_seen[slot] = self._oom_seen[slot], kills
        return kills > seen

    def exited(self, slot: int) -> None:
        """The slot's program was reported gone: the slot comes back once its cgroup is
        empty too (it always is, unless something escaped the pid namespace's kill)."""
        if slot in self.retired:
            return
        # Nothing it started outlives it: the exit of a pid namespace's init is reported
        # only after the kernel has killed and reaped everything else in the namespace.
        # Without namespaces, the cgroup is the only way to find what it left behind.
        if (
            not self.namespaces
            and self.cgroups is not None
            and self.cgroups.procs(slot, self.server(slot))
        ):
            self._follow(_Dying(slot, None, time.monotonic()))
            return
        self._back(slot)

    def boost(self, slot: int, exited: threading.Event) -> None:
        """The slot's program has run a while: BOOST times the CPU share of a program that
        has just started, until the slot comes back.

        A batch of programs ends with its longest: weighed equally against the short ones
        still starting beside it, it runs at a fraction of a core and then alone, with
        the other cores idle (HumanEval/75 in `benchmarks/verifier.py`). The boost is the
        same for every program that runs long, so none starves another: a new program
        waits at most until it has run as long itself."""
        if self.cgroups is None or not self.cgroups.weighs:
            return
        with self._lock:
            # Under the lock with `_back`: a slot already given back is not boosted.
            if exited.is_set() or slot in self._boosted:
                return
            with contextlib.suppress(CgroupError):
                self.cgroups.weigh(slot, BOOST)
                self._boosted.add(slot)

    def _back(self, slot: int) -> None:
        with self._lock:
            if slot in self._boosted:
                self._boosted.discard(slot)
                assert self.cgroups is not None
                with contextlib.suppress(CgroupError):
                    self.cgroups.weigh(slot, 1)
        self._free.put(slot)

    def killed(self, slot: int, exited: threading.Event) -> None:
        """The slot's program was sent SIGKILL; watch that it goes."""
        if not exited.is_set():
            self._follow(_Dying(slot, exited, time.monotonic() + EXIT_GRACE_S))

    def _follow(self, d: _Dying) -> None:
        # No wake-up: the watchdog looks every half second, and almost every program is
        # reported gone long before its deadline.
        with self._lock:
            self._dying.append(d)

    def _watch(self) -> None:
        while not self._closed:
            self._wake.wait(0.5)
            self._wake.clear()
            now = time.monotonic()
            due, waiting = [], []
            with self._lock:
                for d in self._dying:
                    if d.exited is not None and d.exited.is_set():
                        continue  # reported gone: `exited` has dealt with it
                    (due if d.deadline <= now else waiting).append(d)
                self._dying = waiting
            for d in due:
                self._overdue(d)

    def _overdue(self, d: _Dying) -> None:
        if d.exited is None:  # gone, but processes linger in its cgroup
            assert self.cgroups is not None
            if self.cgroups.kill_all(d.slot, self.server(d.slot)):
                self._back(d.slot)
            else:
                self._retire(d.slot)
        elif d.exited.is_set():
            return  # reported gone meanwhile: `exited` has dealt with it
        elif self.cgroups is not None and not d.cgroup_killed:
            self.cgroups.kill_all(d.slot, self.server(d.slot))
            d.cgroup_killed = True
            d.deadline = time.monotonic() + RETIRE_AFTER_S
            self._follow(d)
        else:
            self._retire(d.slot)

    def _retire(self, slot: int) -> None:
        self.retired.add(slot)
        self.on_retire(slot)
        log.error(
            "sandbox: the program in slot %d (uid %d) did not exit after SIGKILL; "
            "slot retired, verification goes on",
            slot,
            self.uid(slot),
        )
        with contextlib.suppress(SlotError):
            self._free.put(self._new())

    def close(self) -> None:
        self._closed = True
        self._wake.set()
