"""What runs inside one sandboxed program's process, from clone to exit.

Set-up happens before any candidate code exists in the process: a fresh session, private
mounts with an empty size-limited tmpfs as the only writable place, no inherited file
descriptors, rlimits, an unprivileged uid, no_new_privs and seccomp. Then the process
says `ready`, receives the code, and answers `call` requests with plain values. It never
sees expected values and never reports a verdict: the parent compares.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import os
import resource
import socket
import sys
from typing import Any, NamedTuple

from filters import sandbox_wire as wire

CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp/sandbox",
    "TMPDIR": "/tmp/sandbox",
}
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    0x1,
    0x2,
    0x4,
    0x20,
    0x1000,
    0x4000,
    1 << 18,
)
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: covered with empty tmpfs
WORKDIR = "/tmp/sandbox"  # each program's own tmpfs, mounted here
PR_SET_NO_NEW_PRIVS = 38
OUTPUT_FILE = ".output"
# Encoded once in the zygote: json.dumps in a fresh clone touches (copies) ~35 pages.
READY = wire.frame({"ready": True})


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


class Bind(NamedTuple):
    """A directory the program must still read (Python's stdlib, the venv) that would be
    hidden: under a scratch place that gets a fresh tmpfs, or under a directory others may
    not enter (such as /root), which then gets an empty tmpfs of its own."""

    path: str
    cover: str


def plan_binds(paths: list[str]) -> list[Bind]:
    """Which of `paths` need re-binding inside the program's mount namespace."""
    binds: list[Bind] = []
    for path in sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)}):
        if any(path == b.path or path.startswith(b.path + "/") for b in binds):
            continue
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            ancestor = "/" + "/".join(parts[:i])
            if ancestor in SCRATCH or (ancestor != path and not os.stat(ancestor).st_mode & 0o001):
                binds.append(Bind(path, ancestor))
                break
    return binds


class Layers(NamedTuple):
    """Which isolation layers this machine allows; probed once by the zygote."""

    namespaces: bool = False  # pid + mount + net + ipc namespaces
    unprivileged_uid: bool = False
    seccomp: bool = False

    def missing(self) -> list[str]:
        names = {
            "namespaces": "pid/mount/network namespaces",
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


def isolate_shared(libc: Any, binds: list[Bind], hidden: list[str]) -> None:
    """Once, in the zygote's own mount namespace: what every program sees alike.

    Empty tmpfs over the scratch places and over directories others may not enter, the
    directories Python needs bound back read-only, and whatever holds answers (the
    warehouse, task data, HumanEval's file) covered with an empty read-only tmpfs.
    """
    _mount(libc, None, b"/", None, MS_REC | MS_PRIVATE, None)
    # Hold the directories to re-bind before anything covers them.
    held = [(b, os.open(b.path, os.O_PATH | os.O_DIRECTORY)) for b in binds]
    for target in sorted({*SCRATCH, *(b.cover for b in binds)}):
        if os.path.isdir(target):
            _mount(
                libc,
                b"tmpfs",
                target.encode(),
                b"tmpfs",
                MS_NOSUID | MS_NODEV,
                b"size=1m,mode=0755",
            )
    for bind, fd in held:
        os.makedirs(bind.path, mode=0o755, exist_ok=True)
        target = bind.path.encode()
        _mount(libc, f"/proc/self/fd/{fd}".encode(), target, None, MS_BIND | MS_REC, None)
        _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None)
        os.close(fd)
    for path in hidden:
        if os.path.isdir(path):
            _mount(
                libc,
                b"tmpfs",
                path.encode(),
                b"tmpfs",
                MS_NOSUID | MS_NODEV | MS_RDONLY,
                b"size=4k,mode=0555",
            )
    os.makedirs(WORKDIR, mode=0o755, exist_ok=True)
    for target in SCRATCH:
        if os.path.isdir(target) and target != "/tmp":
            _mount(
                libc,
                None,
                target.encode(),
                None,
                MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                None,
            )


def isolate_program(libc: Any, limits: Limits, uid: int) -> str:
    """Per program, in its own mount namespace: a fresh size-limited tmpfs as the only
    writable place, and a /proc that shows only its own pid namespace."""
    opts = f"size={limits.tmpfs_mb}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}".encode()
    _mount(libc, b"tmpfs", WORKDIR.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts)
    _mount(libc, b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV, None)
    return WORKDIR


def set_limits(limits: Limits, with_nproc: bool) -> None:
    mb = 1024 * 1024
    pairs = [
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if with_nproc:
        pairs.append((resource.RLIMIT_NPROC, limits.processes))
    for which, value in pairs:
        resource.setrlimit(which, (value, value))


def setup(
    rpc: socket.socket,
    limits: Limits,
    layers: Layers,
    uid: int,
    seccomp: Any,
) -> None:
    """Everything before candidate code: raises OSError on any failure (a sandbox fault)."""
    libc = LIBC
    os.setsid()
    if layers.namespaces:
        workdir = isolate_program(libc, limits, uid if layers.unprivileged_uid else 0)
    else:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="distillery-sbx-")
        if layers.unprivileged_uid:
            os.chown(workdir, uid, uid)
    os.chdir(workdir)
    keep = rpc.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(os.path.join(workdir, OUTPUT_FILE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if layers.unprivileged_uid:
        os.fchown(out, uid, uid)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    set_limits(limits, with_nproc=layers.unprivileged_uid)
    if layers.unprivileged_uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
    if layers.seccomp and seccomp is not None:
        seccomp.load()
    sys.setrecursionlimit(3000)


def serve(rpc: wire.Channel) -> None:
    """Load the candidate, then answer calls until the parent hangs up or kills us."""
    msg = rpc.recv()
    code, entry = msg["code"], msg["entry_point"]
    try:
        compiled = compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError) as exc:
        rpc.send({"error": "syntax", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        return
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
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
    rpc.send({"loaded": True})
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
        return {"raised": name, "detail": str(exc)[:300]}
    except BaseException as exc:
        return {"raised": type(exc).__name__, "detail": str(exc)[:300]}
    try:
        value = wire.encode(result)
    except (wire.WireError, RecursionError):
        value = {"$o": "unencodable"}
    return {"value": value}


def main(
    rpc_fd: int,
    limits: Limits,
    layers: Layers,
    uid: int,
    seccomp: Any,
) -> None:
    """Entry point in the cloned process; always ends with os._exit."""
    # Family and type given: otherwise the socket asks the kernel for them (3 syscalls).
    rpc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, rpc_fd)
    try:
        setup(rpc, limits, layers, uid, seccomp)
    except BaseException as exc:
        try:
            wire.Channel(rpc).send({"setup_failed": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            os._exit(70)
    try:
        chan = wire.Channel(rpc)
        chan.send_frame(READY)
        serve(chan)
    except BaseException:
        pass
    os._exit(0)
