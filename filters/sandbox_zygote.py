"""The zygote: a warm, single-threaded process that clones one process per program.

Started once per Sandbox with a clean environment (no secrets of the parent's), it
pre-imports what test programs commonly use, probes which isolation layers the machine
allows, then loops: receive a `spawn` request with the program's socket attached, clone
a child into new pid/mount/net/ipc namespaces (so killing it kills everything it started),
report the pid, and report every exit status. It is a child subreaper and reaps every
descendant that is reparented to it.

Run as `python -S -m filters.sandbox_zygote CONTROL_FD HIDDEN_JSON LIMITS_JSON SITE_JSON`
(the directories to hide, the limits every program gets, and the site-packages
directories to import from).
"""

from __future__ import annotations

import _signal

# Every module imported here is warm: a clone inherits it, so a program importing it pays
# nothing. Beyond its own needs the zygote adds only what test programs commonly import
# (HumanEval's: typing, math, collections, re): each module is memory every clone maps,
# copies on write and unmaps again, and one with an at-fork hook (random, threading) would
# run Python code in every clone.
import collections  # noqa: F401
import contextlib
import ctypes
import errno
import gc
import json
import math  # noqa: F401
import os
import re  # noqa: F401
import select
import signal
import socket
import sys
import time
import typing  # noqa: F401

from filters import sandbox_wire as wire
from filters.sandbox_child import (
    CLEAN_ENV,
    LIBC,
    Bind,
    Layers,
    Limits,
    isolate_shared,
    plan_binds,
)
from filters.sandbox_child import answer as child_answer
from filters.sandbox_child import main as child_main
from filters.sandbox_wire import EXITED, REPLY, REQUEST, SPAWN_FAILED, SPAWNED

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
# Once, for the zygote and so for every program: no network, no shared IPC, shared mounts.
ZYGOTE_FLAGS = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC
# Per program: its own pid namespace (kill it, kill all) and mount namespace (its tmpfs).
NAMESPACE_FLAGS = CLONE_NEWPID | CLONE_NEWNS
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
PR_SET_CHILD_SUBREAPER = 36
WARM_UP_CALLS = 20  # CPython 3.11 quickens a code object after 8 calls
BASE_UID = 61000  # slot s runs as uid BASE_UID + s: its own RLIMIT_NPROC budget

_libc = LIBC
# Resolved once here: looking a ctypes symbol up in a fresh clone allocates and so touches
# (copies on write) pages that every program would pay for again.
_syscall = _libc.syscall
_after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child


def clone(namespaces: bool) -> int:
    """fork(), or clone() into fresh namespaces; -errno on failure."""
    if not namespaces or SYS_CLONE is None:
        return os.fork()
    pid = _syscall(SYS_CLONE, NAMESPACE_FLAGS | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        # What os.fork does for the interpreter in a child; the zygote has one thread.
        _after_fork_child()
    elif pid < 0:
        return -ctypes.get_errno()
    return pid


def _seccomp() -> object | None:
    try:
        from filters.sandbox_seccomp import SeccompFilter

        return SeccompFilter()
    except OSError:
        return None


def isolate_zygote(binds: list[Bind], hidden: list[str]) -> str | None:
    """Enter the zygote's own namespaces and mount what all programs share; None if done."""
    if _libc.unshare(ZYGOTE_FLAGS) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    try:
        isolate_shared(_libc, binds, hidden)
    except OSError as exc:
        return str(exc)
    return None


def probe(seccomp: object | None, namespaces: bool) -> tuple[Layers, list[str]]:
    """Try each layer in a throwaway child; keep the ones that work."""
    notes = []
    is_root = os.geteuid() == 0
    candidates = [
        Layers(namespaces=namespaces, unprivileged_uid=is_root, seccomp=seccomp is not None),
        Layers(namespaces=False, unprivileged_uid=is_root, seccomp=seccomp is not None),
        Layers(namespaces=False, unprivileged_uid=False, seccomp=seccomp is not None),
        Layers(),
    ]
    for layers in candidates:
        a, b = socket.socketpair()
        pid = clone(layers.namespaces)
        if pid == 0:
            a.close()
            child_main(b.detach(), Limits(), layers, BASE_UID + 999, seccomp)
        b.close()
        if pid < 0:
            notes.append(f"clone into namespaces failed: {os.strerror(-pid)}")
            a.close()
            continue
        try:
            reply = wire.Channel(a, deadlines=True).recv(time.monotonic() + 10)
        except (EOFError, OSError, wire.WireError) as exc:
            reply = {"setup_failed": str(exc)}
        a.close()
        os.waitpid(pid, 0)
        if reply.get("ready"):
            return layers, notes
        notes.append(f"layers {layers} unavailable: {reply.get('setup_failed')}")
    return Layers(), notes


def warm_up() -> None:
    """Run the code every program runs, here, until the interpreter has specialised it.

    CPython 3.11 counts a function's first calls, then rewrites ("quickens") its bytecode
    in place: done in a clone, both write to the code object's pages, which are shared
    with the zygote, so each clone would copy them.
    """
    a, b = socket.socketpair()
    mine, theirs = wire.Channel(a, deadlines=True), wire.Channel(b)
    values = [[1, -2.5, "x", True, None], (3, {"k": [4]}), {5, 6}, b"7"]
    for _ in range(WARM_UP_CALLS):
        mine.send({"args": wire.encode(values), "kwargs": wire.encode({"n": 1})})
        theirs.send(child_answer(lambda *args, **kwargs: args, theirs.recv()))
        wire.decode(mine.recv(time.monotonic() + 10)["value"])
    a.close()
    b.close()


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    # Started with -S: the parent's site-packages stay importable (after the standard
    # library, as with site processing), without running their .pth files.
    sys.path.extend(p for p in json.loads(sys.argv[4]) if p not in sys.path)
    # The environment every program inherits: set once here rather than in each clone.
    os.environ.clear()
    os.environ.update(CLEAN_ENV)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    seccomp = _seccomp()
    # SIGCHLD wakes select() through this pipe, so exits are reported at once.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # Python itself must stay readable to the program's uid and visible under its tmpfs.
    binds = plan_binds([*sys.path, sys.prefix, sys.base_prefix, sys.exec_prefix])
    hidden = [os.path.realpath(p) for p in json.loads(sys.argv[2])]
    limits = Limits(**json.loads(sys.argv[3]))
    failed = isolate_zygote(binds, hidden) if os.geteuid() == 0 else "not root"
    layers, notes = probe(seccomp, namespaces=failed is None)
    if failed:
        notes.insert(0, f"namespaces unavailable: {failed}")
    warm_up()
    ctl.send(json.dumps({"ready": True, "layers": layers._asdict(), "notes": notes}).encode())
    # Everything alive now is shared with every clone: keep the collector off those pages
    # so children do not copy them on write just by collecting.
    gc.freeze()
    # Hand free heap pages back to the system: every page mapped here is a page table entry
    # each clone copies and tears down again (~0.5 MB after start-up).
    with contextlib.suppress(AttributeError):  # glibc only
        _libc.malloc_trim(0)
    try:
        while True:
            readable, _, _ = select.select([ctl, wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 4096)
            _reap(ctl)
            if ctl not in readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(ctl, REQUEST.size, 1)
            except OSError:
                break
            if not data:
                break  # the parent is gone: so are we
            req_id, slot = REQUEST.unpack(data)
            if not fds:
                ctl.send(REPLY.pack(SPAWN_FAILED, req_id, errno.EBADF, 0))
                continue
            pid = clone(layers.namespaces)
            if pid == 0:
                ctl.close()
                os.close(wake_r)
                os.close(wake_w)
                signal.set_wakeup_fd(-1)
                # The C function, not signal.signal: its wrapper turns the old handler into an
                # enum member, and for a function that is a caught ValueError costing ~0.2 ms.
                _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
                child_main(fds[0], limits, layers, BASE_UID + slot, seccomp)
            os.close(fds[0])
            if pid > 0:
                ctl.send(REPLY.pack(SPAWNED, req_id, pid, 0))
            else:
                ctl.send(REPLY.pack(SPAWN_FAILED, req_id, -pid, 0))
    except ConnectionError:
        pass  # the parent is gone (a reply it no longer waits for): so are we
    # Leaving: take every remaining program down with us.
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _reap(ctl: socket.socket) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        cpu_us = round((usage.ru_utime + usage.ru_stime) * 1e6)
        try:
            ctl.send(REPLY.pack(EXITED, pid, status, cpu_us))
        except OSError:
            return


if __name__ == "__main__":
    main()
