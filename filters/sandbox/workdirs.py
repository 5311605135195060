"""The sandbox's own directory on the host, and the removal of ones their sandbox left.

Programs that run without namespaces (no private tmpfs) each get a directory inside their
sandbox's directory, which `Sandbox.close` removes. A sandbox killed with SIGKILL cannot
close, so its directory stayed in the temporary directory for good. Each sandbox now holds
an exclusive `flock` on its directory for as long as it lives (the kernel drops it when the
process dies, however it dies), and a starting sandbox removes every directory of the same
prefix that is its user's and that no one holds: those whose sandbox is gone. A lock, not
a pid, says who is alive: pids are reused and differ between pid namespaces that share one
`/tmp`. A directory gets its name only once it is locked (`make_workdirs`), so no sweep
ever sees a live sandbox's directory unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile

from distillery.filters.sandbox.child import remove_workdir

PREFIX = "distillery-sbx-"
STAGING_PREFIX = ".distillery-sbx-new-"  # not PREFIX: the sweep never sees it


def make_workdirs() -> tuple[str, int]:
    """A new directory for a sandbox's programs and the descriptor holding its lock (close
    it after removing the directory). Traversable by the programs' uids, listable by none.

    Made under a name no sweep looks at, locked, and only then renamed to `PREFIX...`: a
    sandbox starting beside this one never sees it unlocked, and so never takes it for a
    dead sandbox's (the rename keeps the directory, and the lock with it). A process killed
    between making and renaming leaves an empty staging directory, which nothing sweeps:
    that window is a few system calls wide."""
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX)
    os.chmod(staging, 0o711)
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    parent = os.path.dirname(staging)
    while True:
        path = os.path.join(parent, PREFIX + secrets.token_hex(8))
        if not os.path.lexists(path):  # 64 random bits: a clash is not expected, only guarded
            os.rename(staging, path)
            return path, fd


def remove_stale(parent: str | None = None) -> list[str]:
    """Remove the sandbox directories under `parent` (the temporary directory) whose
    sandbox is gone; returns their paths. Only real directories of this user are touched
    (never a symlink, never another user's), and each only while this process holds its
    lock, so a live sandbox's directory is never removed. Never raises."""
    parent = parent or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(parent, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # not a directory, a symlink, gone, or not ours to open
        try:
            st = os.fstat(fd)  # a directory: O_DIRECTORY opened it
            if st.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its sandbox is alive
            # The name still names this directory (only its owner, us, can rename it in a
            # sticky temporary directory): removed while the lock is held.
            if os.path.samestat(st, os.lstat(path)):
                remove_workdir(path)
                removed.append(path)
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
    return removed
