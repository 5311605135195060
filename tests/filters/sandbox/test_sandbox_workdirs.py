"""A sandbox's directory on the host is locked while its sandbox lives; a starting sandbox
removes the directories whose sandbox died without closing, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from distillery.filters.sandbox import workdirs
from distillery.filters.sandbox.workdirs import PREFIX, make_workdirs, remove_stale

# A sandbox killed with SIGKILL: it made its directory (and a program's inside it), then died
# without closing.
KILLED = """
import os, signal, sys
from distillery.filters.sandbox.workdirs import make_workdirs
path, _ = make_workdirs()
os.makedirs(os.path.join(path, "prog-1", "sub"))
open(os.path.join(path, "prog-1", "sub", "out.txt"), "w").write("left")
print(path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

# A sandbox that lives: it holds its directory until told to go.
LIVING = """
import sys
from distillery.filters.sandbox.workdirs import make_workdirs
path, _ = make_workdirs()
print(path, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(workdirs.tempfile, "tempdir", None)  # re-read TMPDIR
    return tmp_path


def _child(code: str, tmp: Path, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, **kw
    )


def test_a_killed_sandboxs_directory_is_removed_a_living_ones_kept(tmp: Path) -> None:
    killed = _child(KILLED, tmp)
    dead_dir = killed.stdout.readline().strip()
    killed.wait()
    assert killed.returncode == -9 and Path(dead_dir, "prog-1", "sub", "out.txt").is_file()

    living = _child(LIVING, tmp, stdin=subprocess.PIPE)
    try:
        alive_dir = living.stdout.readline().strip()
        mine, lock = make_workdirs()  # this process's own sandbox directory, also held

        assert remove_stale() == [dead_dir]
        assert not Path(dead_dir).exists()
        assert Path(alive_dir).is_dir() and Path(mine).is_dir()
        assert remove_stale() == []  # nothing more to remove
    finally:
        living.communicate("")
    # Its sandbox gone (the process exited, its lock with it), the directory is stale too.
    assert remove_stale() == [alive_dir]
    os.close(lock)
    assert remove_stale() == [mine]
    assert sorted(p.name for p in tmp.iterdir()) == []


def test_only_this_users_real_directories_are_touched(tmp: Path) -> None:
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the sandbox's")
    (tmp / f"{PREFIX}link").symlink_to(outside)
    (tmp / f"{PREFIX}file").write_text("a file, not a directory")
    (tmp / "other-prefix").mkdir()
    theirs = tmp / f"{PREFIX}theirs"
    theirs.mkdir()
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)  # another user's: not this user's to remove
    else:
        theirs.rmdir()

    assert remove_stale() == []
    assert (outside / "keep.txt").read_text() == "not the sandbox's"
    assert (tmp / f"{PREFIX}link").is_symlink() and (tmp / f"{PREFIX}file").is_file()
    assert (tmp / "other-prefix").is_dir()
    assert theirs.is_dir() == (os.geteuid() == 0)


def test_a_missing_temporary_directory_removes_nothing(tmp_path: Path) -> None:
    assert remove_stale(str(tmp_path / "absent")) == []


def test_a_sandbox_closed_twice_gives_back_its_resources_once(tmp: Path) -> None:
    from distillery.filters.sandbox.runner import Sandbox

    sb = Sandbox(workers=1)
    own = sb._workdirs
    sb.close()
    assert not Path(own).exists()
    # The descriptors the first close gave back (uid-block lock, directory lock) are free
    # for reuse: a second close must not close whatever holds those numbers now.
    reused = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]
    try:
        sb.close()
        for fd in reused:
            os.fstat(fd)  # still open
    finally:
        for fd in reused:
            os.close(fd)


# Sandboxes being made, one after another, while this process sweeps: each directory is
# held from the moment it has the name a sweep looks for.
MAKING = """
import sys
from distillery.filters.sandbox.workdirs import make_workdirs
held = [make_workdirs() for _ in range(300)]
print("\\n".join(path for path, _ in held), flush=True)
sys.stdin.read()
"""


def test_a_sandbox_being_made_is_never_taken_for_a_dead_one(tmp: Path) -> None:
    removed: list[str] = []
    done = threading.Event()

    def sweep() -> None:
        while not done.is_set():
            removed.extend(remove_stale())

    sweeper = threading.Thread(target=sweep)
    maker = _child(MAKING, tmp, stdin=subprocess.PIPE)
    sweeper.start()
    try:
        made = [maker.stdout.readline().strip() for _ in range(300)]
    finally:
        done.set()
        sweeper.join()
        maker.stdin.close()
        maker.wait()
    assert removed == []
    assert all(Path(p).is_dir() for p in made) and len(set(made)) == 300
    assert sorted(remove_stale()) == sorted(made)  # its maker gone, all 300 are stale


def test_the_name_a_directory_is_made_under_is_not_swept(tmp: Path) -> None:
    staging = tmp / f"{workdirs.STAGING_PREFIX}x"
    staging.mkdir()  # unlocked, as between its making and its lock
    assert not workdirs.STAGING_PREFIX.startswith(PREFIX)
    assert remove_stale() == [] and staging.is_dir()


def test_removing_a_directory_that_is_gone_leaves_its_parent_alone(tmp_path: Path) -> None:
    from distillery.filters.sandbox.child import remove_workdir

    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(0o1777)  # as /tmp
    (parent / "here").mkdir()
    remove_workdir(str(parent / "here"))
    remove_workdir(str(parent / "here"))  # gone already: a second close, a sweep's race
    remove_workdir(str(parent / "never"))
    assert (parent.stat().st_mode & 0o7777) == 0o1777
    assert list(parent.iterdir()) == []
