"""The zygote: a warm, single-threaded process that clones one process per program.

Started once per Sandbox with a clean environment (no secrets of the parent's), it
pre-imports what test programs commonly use, enters a network namespace with no devices
and a mount namespace, pivots into the allowlisted read-only root (`sandbox.root`), probes
which isolation layers the machine allows, then loops: receive a `spawn` request with the
program's socket attached, clone a child into new pid/mount/ipc/uts namespaces (so killing
it kills everything it started, and nothing it leaves in System V IPC outlives it), report
the pid, and report every exit status. It is a child subreaper and reaps every descendant
that is reparented to it.

Started by `runner` as `python -S -c ZYGOTE_BOOT PACKAGE_DIR CONTROL_FD CONFIG_JSON`: the
root to build, the limits every program gets, the site-packages directories to import
from, the uid block, and the cgroup directory descriptors it was handed.
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
from collections.abc import Callable
from typing import Any

from distillery.filters.sandbox import _spawn, wire
from distillery.filters.sandbox import child as child_module
from distillery.filters.sandbox.child import (
    CLEAN_ENV,
    LIBC,
    Layers,
    Limits,
    Slot,
    build_root,
    join_cgroups,
    make_workdir,
    remove_workdir,
    setup_args,
)
from distillery.filters.sandbox.child import answer as child_answer
from distillery.filters.sandbox.child import main as child_main
from distillery.filters.sandbox.wire import (
    EXITED,
    REPLY,
    REQUEST,
    SLOT_EXITED,
    SLOT_STARTED,
    SPAWN_FAILED,
    SPAWNED,
)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
# Once, for the zygote and so for every program: no network devices, its own mounts.
ZYGOTE_FLAGS = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
# Per program: its own pid namespace (kill it, kill all), mount namespace (its tmpfs and
# /proc), IPC namespace (shared memory, queues and semaphores die with it) and hostname.
NAMESPACE_FLAGS = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
WARM_UP_CALLS = 20  # CPython 3.11 quickens a code object after 8 calls
# The message kinds the compiled slot server sends (`_spawn.serve`), as defined in `wire`.
SERVE_CODES = (SPAWNED, SPAWN_FAILED, EXITED)

_libc = LIBC


def clone(namespaces: bool) -> int:
    """fork(), or clone() into fresh namespaces; -errno on failure."""
    return _spawn.clone(NAMESPACE_FLAGS if namespaces else 0)


def _seccomp() -> object | None:
    try:
        from distillery.filters.sandbox.seccomp import SeccompFilter

        return SeccompFilter()
    except OSError:
        return None


def isolate_zygote(plan: dict[str, Any] | None) -> str | None:
    """Enter the zygote's own namespaces and pivot into the allowlisted root; None if done."""
    if _libc.unshare(ZYGOTE_FLAGS) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    if plan is None:
        return "no root plan"
    try:
        build_root(_libc, plan)
    except OSError as exc:
        return f"root: {exc}"
    # Only what exists in the new root stays importable; the interpreter is the real one
    # (a venv's `bin/python` is not there).
    sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)]
    # The finders of the paths that remain keep their cached listings (warm for every
    # clone: rebuilt, each program would list the standard library on its first import).
    for path in [p for p in sys.path_importer_cache if p not in sys.path]:
        del sys.path_importer_cache[path]
    sys.executable = plan["executable"]
    os.environ["PATH"] = os.path.dirname(plan["executable"])
    return None


def probe(
    seccomp: object | None, namespaces: bool, root: bool, probe_uid: int
) -> tuple[Layers, list[str]]:
    """Try each layer in a throwaway child; keep the ones that work."""
    notes = []
    is_root = os.geteuid() == 0
    has_seccomp = seccomp is not None
    candidates = [
        Layers(namespaces=namespaces, root=root, unprivileged_uid=is_root, seccomp=has_seccomp),
        Layers(namespaces=False, root=root, unprivileged_uid=is_root, seccomp=has_seccomp),
        Layers(namespaces=False, root=root, unprivileged_uid=False, seccomp=has_seccomp),
        Layers(root=root),
    ]
    for layers in candidates:
        a, b = socket.socketpair()
        slot = Slot(-1, probe_uid, workdir=_workdir(layers, probe_uid))
        pid = clone(layers.namespaces)
        if pid == 0:
            a.close()
            child_main(b.detach(), setup_args(Limits(), layers, slot, seccomp))
        b.close()
        if pid < 0:
            notes.append(f"clone into namespaces failed: {os.strerror(-pid)}")
            a.close()
            remove_workdir(slot.workdir)
            continue
        try:
            reply = wire.Channel(a, deadlines=True).recv(time.monotonic() + 10)
        except (EOFError, OSError, wire.WireError) as exc:
            reply = {"setup_failed": str(exc)}
        a.close()
        os.waitpid(pid, 0)
        remove_workdir(slot.workdir)
        if reply.get("ready"):
            return layers, notes
        notes.append(f"layers {layers} unavailable: {reply.get('setup_failed')}")
    return Layers(), notes


def _workdir(layers: Layers, uid: int) -> str:
    """The host directory a program needs when it gets no private tmpfs; "" otherwise."""
    if layers.namespaces:
        return ""
    return make_workdir(uid if layers.unprivileged_uid else None)


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
    config = json.loads(sys.argv[2])
    # Started with -S: the parent's site-packages stay importable (after the standard
    # library, as with site processing), without running their .pth files.
    sys.path.extend(p for p in config["site"] if p not in sys.path)
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
    limits = Limits(**config["limits"])
    # For every program (deep recursion in honest code), set once here and inherited.
    sys.setrecursionlimit(3000)
    base_uid = int(config["base_uid"])
    cgroup_fds = tuple(int(fd) for fd in config["cgroup_fds"])
    failed = isolate_zygote(config["root"]) if os.geteuid() == 0 else "not root"
    if os.path.isdir(config.get("workdirs") or ""):  # not after pivoting into the root
        child_module.WORKDIR_BASE = config["workdirs"]
    namespaces = failed is None or failed.startswith("root:")
    layers, notes = probe(seccomp, namespaces, failed is None, int(config["probe_uid"]))
    if failed:
        notes.insert(0, f"isolation incomplete: {failed}")
    warm_up()
    ctl.send(json.dumps({"ready": True, "layers": layers._asdict(), "notes": notes}).encode())
    # Everything alive now is shared with every clone: keep the collector off those pages
    # so children do not copy them on write just by collecting.
    gc.freeze()
    # Hand free heap pages back to the system: every page mapped here is a page table entry
    # each clone copies and tears down again (~0.5 MB after start-up).
    with contextlib.suppress(AttributeError):  # glibc only
        _libc.malloc_trim(0)
    slots: dict[int, int] = {}  # slot server pid -> slot index
    try:
        # None: the parent is gone, and so are we.
        while (request := _next_request(ctl, wake_r, lambda: _reap(ctl, slots))) is not None:
            data, fds = request
            _, index = REQUEST.unpack(data)
            if not fds:
                continue
            pid = os.fork()
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                signal.set_wakeup_fd(-1)
                slot = Slot(index, base_uid + index, cgroup_fds)
                serve_slot(socket.socket(fileno=fds[0]), ctl, slot, limits, layers, seccomp)
                os._exit(0)
            os.close(fds[0])
            slots[pid] = index
            ctl.send(REPLY.pack(SLOT_STARTED, index, pid, 0))
    except ConnectionError:
        pass  # the parent is gone (a reply it no longer waits for): so are we
    # Leaving: each slot's server takes its programs down with it.
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def serve_slot(
    requests: socket.socket,
    ctl: socket.socket,
    slot: Slot,
    limits: Limits,
    layers: Layers,
    seccomp: object | None,
) -> None:
    """One slot's server, forked from the zygote: it joins the slot's cgroups once, then
    clones every program of the slot, which so starts in them. Moving each program in
    instead costs a cgroup migration per program (~10 % of verification throughput).

    Its programs' exits go to the parent over the shared control channel (one datagram
    each); it ends, killing its programs, when the parent closes the slot's channel.
    With namespaces the loop is compiled (`_spawn.serve`): it runs once per program, and
    in Python it wrote to ~110 pages after each clone, copied on write then by the server
    and the program both. Without them each program needs a host directory made before
    it and removed after it, and the loop stays here (`_serve_with_workdirs`).
    """
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    failed = 0
    try:
        join_cgroups(slot.cgroup_fds, slot.index)
    except OSError as exc:
        failed = exc.errno or errno.EIO
    for fd in slot.cgroup_fds:
        os.close(fd)
    workdirs: dict[int, str] = {}  # program pid -> its host directory (no namespaces)
    try:
        if layers.namespaces:
            seccomp, failed = _filter_server(seccomp, layers, failed)
            setup = setup_args(limits, layers, Slot(slot.index, slot.uid), seccomp)
            # The loop takes SIGCHLD from a signalfd, and a program wants the default: set
            # here once, not in every program (the zygote's handler is Python's).
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            fd = _spawn.serve(requests.fileno(), ctl.fileno(), NAMESPACE_FLAGS, failed, SERVE_CODES)
            if fd is not None:
                # The server's descriptors are closed by the set-up: it keeps only `fd`.
                child_main(fd, setup)
        else:
            _serve_with_workdirs(requests, ctl, slot, limits, layers, seccomp, failed, workdirs)
    except ConnectionError:
        pass
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in list(workdirs):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        remove_workdir(workdirs.pop(pid))


def _filter_server(seccomp: Any, layers: Layers, failed: int) -> tuple[Any, int]:
    """Load the allowlist in this slot's server, once for all its programs (with the calls
    their set-up still makes, see `seccomp`); what each program then loads on top, and the
    errno its spawns fail with if the filter could not be loaded."""
    if failed or not layers.seccomp or seccomp is None:
        return seccomp, failed
    try:
        _spawn.load_filter(seccomp.server_address)
    except OSError as exc:
        return seccomp, exc.errno or errno.EPERM
    return seccomp.stacked, failed


def _serve_with_workdirs(
    requests: socket.socket,
    ctl: socket.socket,
    slot: Slot,
    limits: Limits,
    layers: Layers,
    seccomp: object | None,
    failed: int,
    workdirs: dict[int, str],
) -> None:
    """A slot server's loop without namespaces: each program gets a host directory, made
    here before it is cloned and removed once it has been reaped (`workdirs`)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # None: the parent closed the slot.
    while request := _next_request(requests, wake_r, lambda: _reap(ctl, None, workdirs)):
        data, fds = request
        req_id, _ = REQUEST.unpack(data)
        if not fds or failed:
            for fd in fds:
                os.close(fd)
            ctl.send(REPLY.pack(SPAWN_FAILED, req_id, failed or errno.EBADF, 0))
            continue
        program_slot = Slot(slot.index, slot.uid, workdir=_workdir(layers, slot.uid))
        setup = setup_args(limits, layers, program_slot, seccomp)
        pid = clone(False)
        if pid == 0:
            os.close(wake_r)
            os.close(wake_w)
            signal.set_wakeup_fd(-1)
            # The C function, not signal.signal: its wrapper turns the old handler into an
            # enum member, and for a function that is a caught ValueError costing ~0.2 ms.
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            child_main(fds[0], setup)
        os.close(fds[0])
        if pid > 0:
            workdirs[pid] = program_slot.workdir
            ctl.send(REPLY.pack(SPAWNED, req_id, pid, 0))
        else:
            remove_workdir(program_slot.workdir)
            ctl.send(REPLY.pack(SPAWN_FAILED, req_id, -pid, 0))


def _next_request(
    sock: socket.socket, wake_r: int, reap: Callable[[], None]
) -> tuple[bytes, list[int]] | None:
    """The next request on `sock` and the descriptors sent with it, reporting exits
    (`reap`) as SIGCHLD wakes us; None once the other end is gone."""
    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        reap()
        if sock not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, REQUEST.size, 1)
        except OSError:
            return None
        return (data, fds) if data else None


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _reap(
    ctl: socket.socket, slots: dict[int, int] | None, workdirs: dict[int, str] | None = None
) -> None:
    """Report the exit of every child that has ended: a program's (EXITED), or, in the
    zygote, a slot server's (SLOT_EXITED; `slots` maps their pids to slot indices; None
    in a slot server, whose children are all programs). A program's host directory, if
    it had one (`workdirs`), is removed once it is reaped.
    Orphans reparented to the zygote are reaped without a report."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if workdirs:
            remove_workdir(workdirs.pop(pid, ""))
        if slots is not None:
            index = slots.pop(pid, None)
            message = None if index is None else REPLY.pack(SLOT_EXITED, index, pid, status)
        else:
            cpu_us = round((usage.ru_utime + usage.ru_stime) * 1e6)
            message = REPLY.pack(EXITED, pid, status, cpu_us)
        if message is None:
            continue
        try:
            ctl.send(message)
        except OSError:
            return


if __name__ == "__main__":
    main()
