"""What runs inside one sandboxed program's process, from clone to exit.

Set-up happens before any candidate code exists in the process: a fresh session, private
mounts with an empty size-limited tmpfs as the only writable place, no inherited file
descriptors, rlimits, an unprivileged uid, no_new_privs and seccomp. Then the process
says `ready`, receives the code, and answers `call` requests with plain values. It never
sees expected values and never reports a verdict: the parent compares.
"""

from __future__ import annotations

import _socket
import builtins
import contextlib
import ctypes
import errno
import os
import sys
import types
from typing import Any, NamedTuple

from distillery.filters.sandbox import _spawn, wire

CLEAN_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
}
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    0x1,
    0x2,
    0x4,
    0x8,
    0x20,
    0x1000,
    0x4000,
    1 << 18,
)
MNT_DETACH = 2
WORKDIR = "/tmp"  # each program's own tmpfs, mounted here: the one writable place
STAGING = "/tmp"  # where the zygote assembles the new root before pivoting into it
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
OUTPUT_FILE = ".output"
# Encoded once in the zygote: json.dumps in a fresh clone touches (copies) ~35 pages.
READY = wire.frame({"ready": True})
LOADED = wire.frame({"loaded": True})


# Records here are NamedTuples, not dataclasses: this module is loaded in the zygote, and
# `dataclasses` pulls in inspect, ast and dis (1.4 MB that every clone would map, copy on
# write and tear down again).
class Limits(NamedTuple):
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 8
    tmpfs_mb: int = 32
    open_files: int = 64
    processes: int = 16


class Slot(NamedTuple):
    """Where one program runs: its uid, and its cgroup (`slot-<index>`) under each of the
    sandbox's controller directories, held open by the zygote as `cgroup_fds`."""

    index: int
    uid: int
    cgroup_fds: tuple[int, ...] = ()
    # Without namespaces (no private tmpfs) the program works in a host directory that its
    # slot's server made and removes once the program has been reaped.
    workdir: str = ""


class Layers(NamedTuple):
    """Which isolation layers this machine allows; probed once by the zygote."""

    namespaces: bool = False  # per program: pid, mount, ipc, uts; network once, shared
    root: bool = False  # the allowlisted read-only root (sandbox.root), pivoted into
    unprivileged_uid: bool = False
    seccomp: bool = False

    def missing(self) -> list[str]:
        names = {
            "namespaces": "pid/mount/ipc/uts/network namespaces",
            "root": "an allowlisted read-only root",
            "unprivileged_uid": "an unprivileged uid (RLIMIT_NPROC)",
            "seccomp": "seccomp",
        }
        return [text for key, text in names.items() if not getattr(self, key)]


# Loaded when the zygote imports this module, so every clone inherits it ready to call.
LIBC = ctypes.CDLL(None, use_errno=True)


def _mount(
    libc: Any,
    source: bytes | None,
    target: bytes,
    fstype: bytes | None,
    flags: int,
    data: bytes | None,
) -> None:
    if libc.mount(source, target, fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target.decode()}: {os.strerror(err)}")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def build_root(libc: Any, plan: dict[str, Any]) -> None:
    """Once, in the zygote's own mount namespace: pivot into the allowlisted root.

    A fresh tmpfs gets an empty directory or file for each allowed path, the host path
    bound there read-only (devices keep their device nodes), the symlinks on the way, and
    empty read-only tmpfs over covered directories; then it becomes `/`, read-only, and
    the host's root is detached. See `root.plan`.
    """
    _mount(libc, None, b"/", None, MS_REC | MS_PRIVATE, None)
    # Held before anything is mounted over them (a source may live under STAGING).
    held = [(path, is_dir, os.open(path, os.O_PATH)) for path, is_dir in plan["binds"]]
    new = STAGING.encode()
    _mount(libc, b"tmpfs", new, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0755")
    devices = set(plan["devices"])
    mounts = [(p, "bind", d, fd) for p, d, fd in held] + [
        (p, "cover", True, -1) for p in plan["covers"]
    ]
    for path, kind, is_dir, fd in sorted(mounts, key=lambda m: m[0]):
        target = STAGING + path
        if is_dir:
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        if kind == "cover":
            _mount(
                libc,
                b"tmpfs",
                target.encode(),
                b"tmpfs",
                MS_NOSUID | MS_NODEV | MS_RDONLY,
                b"size=4k,mode=0555",
            )
            continue
        _mount(libc, f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND, None)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        if path not in devices:
            flags |= MS_NODEV
        _mount(libc, None, target.encode(), None, flags, None)
        os.close(fd)
    for path, target in plan["links"]:
        where = STAGING + path
        if not os.path.lexists(where):
            os.makedirs(os.path.dirname(where), mode=0o755, exist_ok=True)
            os.symlink(target, where)
    for path in plan["dirs"]:
        os.makedirs(STAGING + path, mode=0o755, exist_ok=True)
    _mount(
        libc, b"proc", (STAGING + "/proc").encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None
    )
    if SYS_PIVOT_ROOT is None:
        raise OSError(errno.ENOSYS, "pivot_root: unknown architecture")
    os.chdir(STAGING)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount of the host root")
    os.chdir("/")
    _mount(libc, None, b"/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


# Where programs run without namespaces get their directories: the sandbox's own directory
# (set by the zygote from its config; the sandbox removes it, and whatever a killed slot
# server left in it, on close), or the system's temporary directory when it is not visible.
WORKDIR_BASE: str | None = None


def make_workdir(uid: int | None) -> str:
    """A fresh host directory for one program run without namespaces, owned by `uid`
    (None: ours); whoever made it removes it with `remove_workdir` after the program."""
    import tempfile

    workdir = tempfile.mkdtemp(prefix="program-", dir=WORKDIR_BASE)
    if uid is not None:
        os.chown(workdir, uid, uid)
    return workdir


def remove_workdir(workdir: str) -> None:
    """Remove a program's host directory; never raises (the program may have left
    anything in it, including read-only subdirectories)."""
    if not workdir:
        return
    # Imported here, and only for a directory to remove: in the zygote (whose probe calls
    # this with "" under namespaces) shutil brings bz2, lzma and zlib, memory every clone
    # would map, copy on write and tear down again.
    import shutil

    def unlock(_fn: Any, path: str, _exc: Any) -> None:
        # A program running as us may have made a directory unwritable: open it, retry.
        # Never the directory that holds `workdir` itself (the temporary directory): when
        # `workdir` is gone already, its own error lands here too.
        with contextlib.suppress(OSError):
            if path != workdir:
                os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    shutil.rmtree(workdir, onerror=unlock)


def join_cgroups(dir_fds: tuple[int, ...], slot: int) -> None:
    """Move this process (a slot's server) into its slot's cgroup in every controller:
    every program it clones then starts there, and everything a program starts and every
    page it charges is counted there."""
    name = f"slot-{slot}/cgroup.procs"
    for fd in dir_fds:
        procs = os.open(name, os.O_WRONLY, dir_fd=fd)
        try:
            os.write(procs, b"0")
        finally:
            os.close(procs)


def setup_args(limits: Limits, layers: Layers, slot: Slot, seccomp: Any) -> tuple[Any, ...]:
    """What `_spawn.setup` takes after the channel: everything before candidate code (a new
    session; with namespaces a fresh tmpfs and /proc of its own; no inherited descriptors;
    stdout and stderr to a file in the working directory; rlimits; the slot's uid;
    no_new_privs; seccomp). The same for every program of a slot's server, so made there
    once: in a program it would be Python run, and pages touched, each time."""
    uid = slot.uid if layers.unprivileged_uid else -1
    mb = 1024 * 1024
    if layers.namespaces:
        workdir = WORKDIR
        owner = max(uid, 0)
        tmpfs = f"size={limits.tmpfs_mb}m,nr_inodes=4096,mode=0700,uid={owner},gid={owner}"
    else:
        workdir, tmpfs = slot.workdir, None
    return (
        workdir,
        tmpfs,
        f"{workdir}/{OUTPUT_FILE}",
        uid,
        limits.memory_mb * mb,
        limits.cpu_s,
        limits.file_mb * mb,
        limits.open_files,
        limits.processes if layers.unprivileged_uid else -1,  # RLIMIT_NPROC counts the uid
        seccomp.address if layers.seccomp and seccomp is not None else 0,
    )


def serve(rpc: wire.Channel) -> None:
    """Load the candidate, then answer calls until the parent hangs up or kills us."""
    msg = rpc.recv()
    code, entry = msg["code"], msg["entry_point"]
    try:
        compiled = compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError) as exc:
        rpc.send({"error": "syntax", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        return
    # A module of its own, registered: pickle (multiprocessing) finds its functions by name.
    module = types.ModuleType("__candidate__")
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__candidate__"] = module
    namespace: dict[str, Any] = module.__dict__
    try:
        exec(compiled, namespace)
    except MemoryError:
        rpc.send({"error": "memory", "detail": "MemoryError while loading"})
        return
    except BaseException as exc:
        rpc.send({"error": "runtime", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        return
    fn = namespace.get(entry)
    if not callable(fn):
        rpc.send({"error": "missing_entry_point", "detail": f"no function {entry!r}"})
        return
    rpc.send_frame(LOADED)
    while True:
        msg = rpc.recv()
        # A batch is calls sent ahead: each is answered as it is computed, in order.
        for call in msg.get("batch", [msg]):
            rpc.send(answer(fn, call))


def answer(fn: Any, call: dict[str, Any]) -> dict[str, Any]:
    """One call of the candidate, as the message that reports it."""
    args = wire.decode(call["args"])
    kwargs = wire.decode(call.get("kwargs") or {"$d": []})
    try:
        result = fn(*args, **kwargs)
    except MemoryError:
        return {"raised": "MemoryError", "detail": ""}
    except OSError as exc:
        # Python ignores SIGXFSZ, so the file-size limit and a full tmpfs surface here.
        name = "OutputLimit" if exc.errno in (errno.EFBIG, errno.ENOSPC) else type(exc).__name__
        return {"raised": name, "bases": builtin_bases(exc), "detail": _text(exc)}
    except BaseException as exc:
        return {"raised": type(exc).__name__, "bases": builtin_bases(exc), "detail": _text(exc)}
    try:
        value = wire.encode(result)
    except (wire.WireError, RecursionError, ValueError):  # ValueError: an int of 4,300+ digits
        value = {"$o": "unencodable"}
    return {"value": value}


def builtin_bases(exc: BaseException) -> list[str]:
    """The builtin exception classes `exc` is an instance of, nearest first (a candidate's
    `class E(ValueError)` is reported as ValueError too, so that a test's
    `except ValueError` can catch it)."""
    return [
        cls.__name__
        for cls in type(exc).__mro__
        if getattr(builtins, cls.__name__, None) is cls and cls is not object
    ]


def _text(exc: BaseException) -> str:
    """The exception's message, bounded; whatever its `__str__` does."""
    try:
        return str(exc)[:300]
    except BaseException:
        return ""


def main(rpc_fd: int, setup: tuple[Any, ...]) -> None:
    """Entry point in the cloned process (`setup`: from `setup_args`); always ends with
    os._exit."""
    try:
        # Raises OSError naming the step on any failure (a sandbox fault).
        _spawn.setup(rpc_fd, *setup)
    except BaseException as exc:
        try:
            rpc = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, rpc_fd)
            wire.Channel(rpc).send({"setup_failed": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            os._exit(70)
    try:
        # Family and type given: otherwise the socket asks the kernel for them (3 syscalls).
        # The C type, not socket.socket: its methods are C, so a program runs none of
        # socket.py's Python (objects it would touch, pages it would copy on write).
        rpc = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, rpc_fd)
        rpc.sendall(READY)
        serve(wire.Channel(rpc))
    except BaseException:
        pass
    os._exit(0)
