"""The sandbox's compiled part (`filters/sandbox/_spawn.c`): the slot server's loop speaks the
wire's REQUEST/REPLY protocol, its set-up fails closed naming the step, a program loading
its short filter on top of its server's may call exactly what the whole allowlist allows,
and a sandbox without the compiled part refuses to start with a line that says what to do.

The loop and the set-up fork, so they run in a child interpreter of their own, never in the
test process (whose threads a fork would leave behind)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from distillery.filters.sandbox import runner, wire
from distillery.filters.sandbox.runner import Sandbox, SandboxFault

SERVE = r"""
import json, os, socket, sys, time
from distillery.filters.sandbox import _spawn, wire

requests, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
ctl, server_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
codes = (wire.SPAWNED, wire.SPAWN_FAILED, wire.EXITED)
failed = int(sys.argv[1])
pid = os.fork()
if pid == 0:  # the slot server
    requests.close(); ctl.close()
    fd = _spawn.serve(theirs.fileno(), server_ctl.fileno(), 0, failed, codes)
    if fd is None:
        os._exit(0)
    # A program: say who it is on its channel, then exit with a status of its own.
    os.write(fd, str(os.getpid()).encode())
    os._exit(7)
theirs.close(); server_ctl.close()
replies = []


def reply():
    kind, a, b, c = wire.REPLY.unpack(ctl.recv(64))
    return [kind, a, b]

mine, program_end = socket.socketpair()
socket.send_fds(requests, [wire.REQUEST.pack(41, 0)], [program_end.fileno()])
program_end.close()
replies.append(reply())
if not failed:
    said = mine.recv(32).decode()
    replies.append(reply())
    replies.append(said)
requests.send(wire.REQUEST.pack(42, 0))  # no channel attached
replies.append(reply())
requests.close()  # the parent closes the slot: the server returns and exits
_, status = os.waitpid(pid, 0)
replies.append(os.waitstatus_to_exitcode(status))
print(json.dumps(replies))
"""


def _serve(failed: int) -> list:
    r = subprocess.run(
        [sys.executable, "-c", SERVE, str(failed)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_slot_loop_clones_reports_and_reaps():
    spawned, exited, said, no_channel, server_exit = _serve(failed=0)
    assert spawned[:2] == [wire.SPAWNED, 41]
    pid = spawned[2]
    assert said == str(pid)  # the clone is the process the parent was told of
    assert exited == [wire.EXITED, pid, 7 << 8]  # its wait status: exit code 7
    assert no_channel[:3] == [wire.SPAWN_FAILED, 42, 9]  # EBADF
    assert server_exit == 0


def test_a_slot_that_failed_to_start_refuses_every_request():
    first, second, server_exit = _serve(failed=13)
    assert first == [wire.SPAWN_FAILED, 41, 13]
    assert second == [wire.SPAWN_FAILED, 42, 13]
    assert server_exit == 0


SETUP = r"""
import json, os, socket, sys
from distillery.filters.sandbox import _spawn

a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    try:
        _spawn.setup(b.fileno(), sys.argv[1], sys.argv[2] or None, "out", -1,
                     1 << 30, 10, 1 << 20, 64, -1, 0)
        os.write(b.fileno(), b"ok " + json.dumps(sorted(os.listdir("/proc/self/fd"))).encode())
    except OSError as exc:
        os.write(b.fileno(), f"error {exc}".encode())
    os._exit(0)
b.close()
print(a.recv(4096).decode())
os.waitpid(pid, 0)
"""


def _setup(workdir: str, tmpfs: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", SETUP, workdir, tmpfs], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_set_up_keeps_only_the_channel_and_the_standard_streams(tmp_path):
    said = _setup(str(tmp_path), "")
    assert said.startswith("ok "), said
    (tmp_path / "out").stat()  # stdout and stderr go to the working directory's file
    # 0-2, the channel, and the descriptor listing /proc/self/fd itself
    assert len(json.loads(said[3:])) == 5, said


def test_set_up_fails_closed_naming_the_step(tmp_path):
    assert _setup(str(tmp_path / "missing"), "") == ("error chdir: No such file or directory")


def test_set_up_names_a_failed_mount(tmp_path):
    said = _setup(str(tmp_path / "missing"), "size=1m")
    assert said == "error mount tmpfs: No such file or directory"


def test_a_sandbox_without_its_compiled_part_says_how_to_build_it(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name.endswith("sandbox._spawn") else real(name, *args)

    monkeypatch.setattr(runner.importlib.util, "find_spec", find_spec)
    with pytest.raises(SandboxFault, match=r"compiled part .* not built: run `make setup`"):
        Sandbox(workers=1)
    monkeypatch.undo()
    with Sandbox(workers=1) as sb:  # nothing of the failed start is left held
        assert sb.layers


# In a child interpreter, as root (as the sandbox's servers run): the server's filter, then a
# program's on top of it. Root would be allowed each call below but for seccomp, so a
# refusal here is the filters'.
STACKED = r"""
import ctypes, errno, json, os, sys
from distillery.filters.sandbox import _spawn
from distillery.filters.sandbox.seccomp import SeccompFilter

f = SeccompFilter()
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUTS, SIGCHLD = 0x04000000, 17


def calls():
    def rc(value):
        return "OK" if value >= 0 else errno.errorcode[ctypes.get_errno()]
    out = {}
    out["setresuid"] = rc(libc.setresuid(0, 0, 0))
    out["setresgid"] = rc(libc.setresgid(0, 0, 0))
    out["setgroups"] = rc(libc.setgroups(0, None))
    out["mount"] = rc(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None))  # rprivate
    pid = libc.syscall(56, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0)  # clone
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    out["clone newuts"] = rc(pid)
    out["unshare"] = rc(libc.unshare(CLONE_NEWUTS))
    out["getpid"] = rc(os.getpid())
    return out


stages = sys.argv[1:]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    libc.unshare(0x20000)  # a mount namespace of its own: the mount call changes nothing here
    for stage in stages:
        _spawn.load_filter({"server": f.server_address, "program": f.stacked.address,
                            "whole": f.address}[stage])
    os.write(w, json.dumps(calls()).encode())
    os._exit(0)
os.close(w)
print(os.read(r, 65536).decode())
os.waitpid(pid, 0)
"""


def _stacked(*stages: str) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", STACKED, *stages], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_program_on_a_filtered_server_may_call_exactly_what_the_whole_allowlist_allows():
    from distillery.filters.sandbox.seccomp import SETUP_ONLY

    refused = {c: "EPERM" for c in SETUP_ONLY} | {"clone newuts": "EPERM", "unshare": "EPERM"}
    # The server's filter lets the set-up calls through (so the checks below can fail)...
    assert _stacked("server") == {c: "OK" for c in SETUP_ONLY} | {
        "clone newuts": "OK",
        "unshare": "EPERM",
        "getpid": "OK",
    }
    # ...and a program's on top of it takes them back: the same as the whole allowlist.
    assert _stacked("server", "program") == refused | {"getpid": "OK"}
    assert _stacked("whole") == refused | {"getpid": "OK"}
