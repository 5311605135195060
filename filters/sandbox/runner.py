"""The trusted side of the code sandbox: one zygote, slots, bounded concurrency, verdicts.

`Sandbox.run(code, entry_point, driver)` takes a slot (a uid of the sandbox's own block and
a cgroup), has the slot's server (forked from the zygote, see `zygote`) clone a
fresh process for the program, loads the code there, and runs `driver(call)` here: the
driver (the prompt's test cases, or HumanEval's `check`) holds the tests and expected
values and calls the candidate only through `call(*args)`, which returns plain decoded
values. Pass/fail is decided here; the program's process is killed (with everything it
started) as soon as the driver is done or the wall-clock deadline passes.
"""

from __future__ import annotations

import _socket
import builtins
import collections
import contextlib
import importlib.util
import itertools
import json
import logging
import math
import os
import signal
import site
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict
from distillery.filters.sandbox import root as sandbox_root
from distillery.filters.sandbox import wire, workdirs
from distillery.filters.sandbox.cgroup import Cgroups
from distillery.filters.sandbox.child import Layers, Limits, remove_workdir
from distillery.filters.sandbox.slots import SlotError, Slots, UidBlock
from distillery.filters.sandbox.wire import (
    EXITED,
    REPLY,
    REQUEST,
    SLOT_EXITED,
    SLOT_STARTED,
    SPAWNED,
)

log = logging.getLogger(__name__)
SETUP_TIMEOUT_S = 10.0
SLOT_TIMEOUT_S = 30.0  # the longest a program waits for a free slot before it is a fault
SANDBOX_RETRIES = 2
# A program whose tests have been running this long gets a larger CPU share (`Slots.boost`).
BOOST_AFTER_S = 0.02
MAX_PROGRAM_BYTES = 1 << 20
# The folder that is the `distillery` package: the checkout (an editable install) or
# site-packages/distillery (a wheel).
PACKAGE_DIR = str(Path(__file__).resolve().parents[2])
# The zygote runs with -S, so no site processing and no editable-install finder: it is told
# where the package is (its first argument) and imports the zygote from there.
ZYGOTE_BOOT = (
    "import sys, types; m = types.ModuleType('distillery'); m.__path__ = [sys.argv.pop(1)]; "
    "sys.modules['distillery'] = m; "
    "from distillery.filters.sandbox.zygote import main; main()"
)
# Builtin exceptions never raised in the tests for the candidate, though Exceptions: in a
# test's generator or `for` machinery they would end iteration instead of failing.
NOT_CATCHABLE = (StopIteration, StopAsyncIteration)


class CandidateFailed(BaseException):
    """The program broke the run (died, timed out, garbled the channel): a verdict, not a
    bug. A BaseException, so that a test's `except Exception:` cannot swallow it (and the
    run remembers it anyway: see `_Program.failed`)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


class SandboxFault(Exception):
    """The sandbox itself failed (zygote gone, clone failed, set-up failed)."""


class CandidateRaised(BaseException):
    """The candidate raised an exception the tests cannot catch as a builtin (SystemExit,
    KeyboardInterrupt, StopIteration, ...: see `candidate_exception`); `name` is its class
    name."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def candidate_exception(name: str, bases: list[str], detail: str) -> BaseException:
    """What a test sees when the candidate raised `name`, whose builtin bases are `bases`
    (nearest first): the nearest builtin Exception that can be made from one message,
    marked with the candidate's class name, so that a test's `except ValueError:` (or
    `except OSError:`) catches it as it would in one process. UnicodeDecodeError (five
    arguments) arrives as its base ValueError; SystemExit and the like, and StopIteration,
    arrive as CandidateRaised, which no `except Exception:` catches."""
    for base in bases[:8]:
        cls = getattr(builtins, str(base), None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            continue
        if issubclass(cls, NOT_CATCHABLE):
            break
        try:
            exc = cls(detail)
        except Exception:
            continue
        exc.candidate_raised = name
        return exc
    return CandidateRaised(name, detail)


def raised_by_candidate(exc: BaseException) -> str | None:
    """The candidate's exception class name, when `exc` is its exception reaching the test."""
    if isinstance(exc, CandidateRaised):
        return exc.name
    name = getattr(exc, "candidate_raised", None)
    return name if isinstance(name, str) else None


Call = Callable[..., Any]
Driver = Callable[[Call], Verdict]
CallArgs = tuple[list[Any], dict[str, Any]]  # positional and keyword arguments


def _call_body(args: list[Any], kwargs: dict[str, Any]) -> bytes:
    """A call as it goes on the wire, without its frame header."""
    return wire.body({"args": wire.encode(args), "kwargs": wire.encode(kwargs)})


@dataclass(frozen=True)
class Ahead:
    """Calls a driver is known to make first, in order, and the one frame that sends them.

    Built once per test (`Ahead.of`) and sent as soon as a program is set up: the program
    answers each as soon as it has computed it, so those calls cost no round trip each.
    """

    calls: tuple[CallArgs, ...] = ()
    frame: bytes = b""

    @classmethod
    def of(cls, calls: Iterable[CallArgs]) -> Ahead:
        kept: list[CallArgs] = []
        bodies: list[bytes] = []
        for args, kwargs in calls:
            try:
                bodies.append(_call_body(args, kwargs))
            except wire.WireError:
                break  # sent live, where the error becomes the verdict
            kept.append((args, kwargs))
        if not kept:
            return cls()
        return cls(tuple(kept), wire.frame_bytes(b'{"batch":[' + b",".join(bodies) + b"]}"))


def same_value(a: Any, b: Any) -> bool:
    """Whether `a` would reach the program exactly as `b` does: same types all the way
    down (1, 1.0 and True differ; so do 0.0 and -0.0), dicts in the same order."""
    t = type(a)
    if t is not type(b):
        return False
    if t is float or t is complex:
        return repr(a) == repr(b)
    if t is list or t is tuple:
        return len(a) == len(b) and all(map(same_value, a, b))
    if t is dict:
        return len(a) == len(b) and all(
            same_value(ka, kb) and same_value(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if t in (int, str, bytes, bool, type(None), set, frozenset):
        return a == b
    return False


class _Program:
    """One program's channel and deadline, as seen from the trusted side."""

    def __init__(
        self,
        sock: _socket.socket,
        pid: int,
        deadline: float,
        exit_status: Callable[[], tuple[int, float] | None],
        cpu_limit_s: float,
        oom_killed: Callable[[], bool],
        boost: Callable[[], None] | None = None,
    ) -> None:
        self.chan = wire.Channel(sock, deadlines=True)
        self._ahead: collections.deque[CallArgs] = collections.deque()  # calls sent ahead
        self.pid, self.deadline = pid, deadline
        # Called once, when a wait for the program goes past `boost_at` (see `start`).
        self._boost, self.boost_at = boost, math.inf
        self._exit_status = exit_status
        self._cpu_limit_s = cpu_limit_s
        self._oom_killed = oom_killed
        # The first way the program broke the run: the verdict, even if a test caught it.
        self.failed: CandidateFailed | None = None

    def _fail(self, verdict: Verdict) -> CandidateFailed:
        exc = CandidateFailed(verdict)
        if self.failed is None:
            self.failed = exc
        return exc

    def start(self, wall_s: float) -> None:
        """The candidate's code is in the process: from here on its time is counted."""
        now = time.monotonic()
        self.deadline = now + wall_s
        self.boost_at = now + BOOST_AFTER_S

    def recv(self) -> dict[str, Any]:
        if self.failed is not None:
            raise self.failed
        try:
            if self._boost is not None and self.boost_at < self.deadline:
                try:
                    return self.chan.recv(self.boost_at)
                except TimeoutError:
                    boost, self._boost = self._boost, None
                    boost()
            return self.chan.recv(self.deadline)
        except TimeoutError:
            raise self._fail(Verdict.fail(reasons.TIMEOUT, "wall-clock deadline passed")) from None
        except (EOFError, ConnectionError):
            raise self._fail(self._death_verdict()) from None
        except wire.WireError as exc:
            raise self._fail(Verdict.fail(reasons.RUNTIME_ERROR, f"bad reply: {exc}")) from None

    def send(self, message: dict[str, Any]) -> None:
        self._send_frame(wire.frame(message))

    def _send_frame(self, data: bytes) -> None:
        if self.failed is not None:
            raise self.failed
        try:
            self.chan.send_frame(data, self.deadline)
        except TimeoutError:
            # The program stopped reading: it cannot finish before the deadline either.
            raise self._fail(Verdict.fail(reasons.TIMEOUT, "wall-clock deadline passed")) from None
        except ConnectionError:
            raise self._fail(self._death_verdict()) from None

    def prefetch(self, ahead: Ahead) -> None:
        """Send the calls the driver is known to make first (see `Ahead`). Each is still
        judged when the driver makes it, in order, and the first failure still ends the
        run (and kills the program, whatever it is computing ahead).

        Sent while the program loads its code, so it may already have failed to load and
        exited: that is not the verdict. Its own report of why is still on the channel,
        and the calls then go live (and find it gone)."""
        if not ahead.calls:
            return
        try:
            self.chan.send_frame(ahead.frame, self.deadline)
        except (ConnectionError, TimeoutError):
            return
        self._ahead.extend(ahead.calls)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        if self._ahead:
            want_args, want_kwargs = self._ahead.popleft()
            if same_value(list(args), want_args) and same_value(kwargs, want_kwargs):
                return self._reply()
            # The driver left the calls it was expected to make: take the answers computed
            # ahead off the channel, unread, and ask for this call.
            for _ in range(1 + len(self._ahead)):
                self.recv()
            self._ahead.clear()
        try:
            data = wire.frame_bytes(_call_body(list(args), dict(kwargs)))
        except wire.WireError as exc:
            raise self._fail(Verdict.fail(reasons.RUNTIME_ERROR, f"argument: {exc}")) from None
        self._send_frame(data)
        return self._reply()

    def _reply(self) -> Any:
        reply = self.recv()
        if "value" in reply:
            try:
                return wire.decode(reply["value"])
            except wire.WireError as exc:
                raise self._fail(Verdict.fail(reasons.RUNTIME_ERROR, f"bad value: {exc}")) from None
        if "raised" in reply:
            name, detail = str(reply["raised"])[:80], str(reply.get("detail", ""))[:300]
            if name == "MemoryError":
                raise self._fail(Verdict.fail(reasons.MEMORY_LIMIT, "MemoryError"))
            if name == "OutputLimit":
                raise self._fail(Verdict.fail(reasons.OUTPUT_LIMIT, detail))
            bases = reply.get("bases")
            raise candidate_exception(name, bases if isinstance(bases, list) else [], detail)
        raise self._fail(Verdict.fail(reasons.RUNTIME_ERROR, "bad reply"))

    def _death_verdict(self) -> Verdict:
        exited = self._exit_status()
        if self._oom_killed():
            return Verdict.fail(
                reasons.MEMORY_LIMIT, "the program's processes passed its memory limit"
            )
        if exited is None:
            return Verdict.fail(reasons.RUNTIME_ERROR, "the program closed its channel")
        status, cpu_s = exited
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            # As init of its pid namespace the program ignores SIGXCPU; the hard limit's
            # SIGKILL then ends it, which the CPU time it used tells apart.
            if sig == signal.SIGXCPU or (
                sig == signal.SIGKILL and cpu_s >= self._cpu_limit_s - 0.05
            ):
                return Verdict.fail(reasons.TIMEOUT, "CPU time limit")
            if sig == signal.SIGXFSZ:
                return Verdict.fail(reasons.OUTPUT_LIMIT, "file size limit")
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            return Verdict.fail(reasons.RUNTIME_ERROR, f"killed by {name}")
        return Verdict.fail(
            reasons.RUNTIME_ERROR,
            f"exited with code {os.WEXITSTATUS(status)} before the tests finished",
        )


@dataclass(frozen=True)
class _Exit:
    status: int  # as from wait4
    cpu_s: float


@dataclass
class _Waiter:
    event: threading.Event
    reply: Any = None  # the pid (or -errno) for a spawn, an _Exit for an exit
    on_exit: Callable[[], None] | None = None

    def fire(self, reply: Any) -> None:
        self.reply = reply
        self.event.set()
        if self.on_exit is not None:
            self.on_exit()


@dataclass(frozen=True)
class _Spawn:
    """A clone asked of the zygote: its slot, the parent's end of its channel, the reply."""

    slot: int
    sock: _socket.socket
    waiter: _Waiter


class Sandbox:
    """A zygote plus `workers` slots. Thread-safe: call `run` from a thread pool.

    `packages` names the installed packages a program may import besides the standard
    library (none by default); nothing else of the host is visible to it (`sandbox.root`).
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits | None = None,
        packages: tuple[str, ...] = (),
    ) -> None:
        self.workers = workers or 2 * (os.cpu_count() or 1)
        self.limits = limits or Limits()
        self._running = threading.Semaphore(self.workers)
        self._send_lock = threading.Lock()
        self._state = threading.Lock()
        self._ids = itertools.count()
        self._spawns: dict[int, _Waiter] = {}
        self._exits: dict[int, _Waiter] = {}
        self._statuses: dict[int, _Exit] = {}
        self._spare: collections.deque[_Spawn] = collections.deque()  # asked for ahead
        self._spare_lock = threading.Lock()
        self._closed = False
        self._block = UidBlock.acquire()
        self.uid_range = self._block.uids
        self.cgroups = Cgroups.create(
            f"distillery-{self._block.index}",
            self.limits.memory_mb,
            self.limits.processes,
            self.workers,
        )
        cgroup_fds = self.cgroups.open_dirs() if self.cgroups else []
        self._boosts = self.cgroups is not None and self.cgroups.weighs
        self._slot_socks: dict[int, socket.socket] = {}
        self._slot_pids: dict[int, int] = {}  # slot -> its server's pid
        self._slots: Slots | None = None
        # The directory programs get their own directories in when they run without
        # namespaces (no private tmpfs): one per sandbox, locked while it lives, removed on
        # close; the ones of sandboxes that died without closing go now (`workdirs`).
        workdirs.remove_stale()
        self._workdirs, self._workdirs_lock = workdirs.make_workdirs()
        try:
            # What programs see of the host (None: no root of its own, not being root).
            self.root_plan = sandbox_root.plan(tuple(packages)) if os.geteuid() == 0 else None
            self._start_zygote(self.root_plan, cgroup_fds)
            self._reader = threading.Thread(
                target=self._read_loop, name="sandbox-zygote", daemon=True
            )
            self._reader.start()
            # More slots than workers (each running program, each clone asked for ahead, a few
            # dying): a slot comes back only when its program's exit is
            # reported, so no program ever shares a uid or cgroup with a dying one.
            self._slots = Slots(
                self._block,
                2 * self.workers + 2,
                self.cgroups,
                namespaces=self.layers.namespaces,
                on_new=self._open_slot,
                on_retire=self._close_slot,
                server=self._slot_pids.get,
            )
        except BaseException:
            self._release()
            raise
        finally:
            for fd in cgroup_fds:
                os.close(fd)
        missing = self.layers.missing()
        if missing:
            log.warning(
                "sandbox: not available on this machine, running without: %s", ", ".join(missing)
            )
        if self.cgroups is None:
            log.warning("sandbox: no cgroups; memory and processes are limited per process only")

    def _start_zygote(self, root: dict[str, Any] | None, cgroup_fds: list[int]) -> None:
        if importlib.util.find_spec("distillery.filters.sandbox._spawn") is None:
            raise SandboxFault(
                "the sandbox's compiled part (filters/sandbox/_spawn.c) is not built: "
                "run `make setup`, or reinstall distillery"
            )
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "root": root,
            "limits": self.limits._asdict(),
            "site": site.getsitepackages(),
            "base_uid": self._block.base,
            "probe_uid": self._block.probe_uid,
            "cgroup_fds": cgroup_fds,
            "workdirs": self._workdirs,
        }
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # A clean environment: the candidate's ancestors hold none of the parent's secrets.
        self._proc = subprocess.Popen(
            [
                sys.executable,
                # No site processing: .pth files import what no program needs (setuptools'
                # distutils hack, editable finders), and every module in the zygote is
                # memory each clone pays for. The zygote adds site-packages itself.
                "-S",
                "-c",
                ZYGOTE_BOOT,
                PACKAGE_DIR,
                str(child.fileno()),
                json.dumps(config),
            ],
            pass_fds=[child.fileno(), *cgroup_fds],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self._ctl = parent
        self._ctl.settimeout(60)
        try:
            hello = json.loads(self._ctl.recv(65536) or b"{}")
        except (TimeoutError, OSError, json.JSONDecodeError) as exc:
            self._proc.kill()
            raise SandboxFault(f"sandbox zygote did not start: {exc}") from None
        self._ctl.settimeout(None)
        if "layers" not in hello:
            self._proc.kill()
            raise SandboxFault("sandbox zygote exited during start-up; see its error above")
        self.layers = Layers(**hello["layers"])
        self.notes: list[str] = hello.get("notes", [])

    # ------------------------------------------------------------------ zygote channel

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._ctl.recv(REPLY.size)
            except OSError:
                data = b""
            if len(data) != REPLY.size:
                with self._state:
                    for w in [*self._spawns.values(), *self._exits.values()]:
                        w.event.set()
                return
            kind, a, b, c = REPLY.unpack(data)
            if kind == SLOT_STARTED:
                self._slot_pids[a] = b
                continue
            if kind == SLOT_EXITED:
                if not self._closed:
                    log.warning("sandbox: the server of slot %d exited (status %d)", a, c)
                continue
            with self._state:
                if kind == EXITED:
                    exited = _Exit(status=b, cpu_s=c / 1e6)
                    w = self._exits.pop(a, None)
                    if w is None:
                        self._statuses[a] = exited
                else:
                    w = self._spawns.pop(a, None)
                    if w:
                        w.reply = b if kind == SPAWNED else -b
                        w.event.set()
                    w = None
            if w is not None:
                w.fire(exited)  # outside the lock: returning a slot may read its cgroup

    def _open_slot(self, slot: int) -> None:
        """Have the zygote start the slot's server, which joins the slot's cgroups once and
        clones the slot's programs (they start in the cgroups: no migration each)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self._send_lock:
                socket.send_fds(self._ctl, [REQUEST.pack(0, slot)], [theirs.fileno()])
        except OSError as exc:
            mine.close()
            raise SandboxFault(f"zygote unreachable: {exc}") from None
        finally:
            theirs.close()
        self._slot_socks[slot] = mine

    def _close_slot(self, slot: int) -> None:
        """Stop the slot's server (it kills what it still runs)."""
        sock = self._slot_socks.pop(slot, None)
        if sock is not None:
            sock.close()

    def _request(self, slot: int) -> _Spawn:
        """Ask the slot's server for a clone; its reply is awaited later (`_await`)."""
        # The C type: socket.socketpair wraps each end in Python, asking the kernel for
        # each one's address on the way (two system calls a program, each a GIL hand-off).
        mine, theirs = _socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        req_id = next(self._ids)
        spawn = _Spawn(slot, mine, _Waiter(threading.Event()))
        with self._state:
            self._spawns[req_id] = spawn.waiter
        try:
            with self._send_lock:
                socket.send_fds(
                    self._slot_socks[slot], [REQUEST.pack(req_id, slot)], [theirs.fileno()]
                )
        except (OSError, KeyError) as exc:
            mine.close()
            self._slots_().unused(slot)
            raise SandboxFault(f"slot {slot} unreachable: {exc}") from None
        finally:
            theirs.close()  # the slot's server holds it now
        return spawn

    def _await(self, spawn: _Spawn) -> int:
        waiter = spawn.waiter
        if not waiter.event.wait(SETUP_TIMEOUT_S) or waiter.reply is None:
            raise SandboxFault("clone failed: no reply from the zygote")
        if waiter.reply < 0:
            raise SandboxFault(f"clone failed: {os.strerror(-waiter.reply)}")
        return waiter.reply

    def _take(self) -> _Spawn:
        """A clone asked for ahead of time, or a new one; and the next one asked for.

        Cloning and the clone's set-up then overlap the previous program's tests instead
        of waiting for them. Every clone still runs exactly one program. Waiting for a
        free slot has a deadline: a fault, never a hang.
        """
        with self._spare_lock:
            spawn = self._spare.popleft() if self._spare else None
        if spawn is None:
            try:
                slot = self._slots_().take(SLOT_TIMEOUT_S)
            except SlotError as exc:
                raise SandboxFault(str(exc)) from None
            spawn = self._request(slot)
        with self._spare_lock:
            if len(self._spare) < self.workers and not self._closed:
                spare = self._slots_().take_nowait()
                if spare is not None:
                    with contextlib.suppress(SandboxFault):
                        self._spare.append(self._request(spare))
        return spawn

    def _slots_(self) -> Slots:
        assert self._slots is not None, "the sandbox is still starting"
        return self._slots

    def _watch_exit(self, pid: int, on_exit: Callable[[], None]) -> _Waiter:
        waiter = _Waiter(threading.Event(), on_exit=on_exit)
        with self._state:
            early = self._statuses.pop(pid, None)
            if early is None:
                self._exits[pid] = waiter
        if early is not None:
            waiter.fire(early)
        return waiter

    # ------------------------------------------------------------------ programs

    def run(self, code: str, entry_point: str, driver: Driver, ahead: Ahead = Ahead()) -> Verdict:
        """Run `driver` against the program; sandbox faults are retried, then reported.

        `ahead` holds the calls the driver is known to make first; they are sent as soon
        as the program is set up.
        """
        started = time.perf_counter()
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > MAX_PROGRAM_BYTES:
            return Verdict.fail(
                reasons.OUTPUT_LIMIT,
                f"the program is {size:,} bytes; at most {MAX_PROGRAM_BYTES:,} are run",
            )
        verdict = Verdict.fail(reasons.SANDBOX_ERROR, "not run")
        for _ in range(1 + SANDBOX_RETRIES):
            try:
                verdict = self._run_once(code, entry_point, driver, ahead)
                break
            except SandboxFault as exc:
                verdict = Verdict.fail(reasons.SANDBOX_ERROR, str(exc), score=None)
        return Verdict(
            verdict.passed,
            verdict.score,
            verdict.reason,
            verdict.detail,
            time.perf_counter() - started,
        )

    def _run_once(self, code: str, entry_point: str, driver: Driver, ahead: Ahead) -> Verdict:
        if not self._running.acquire(timeout=SLOT_TIMEOUT_S):
            raise SandboxFault(f"no worker came free in {SLOT_TIMEOUT_S:.0f} s")
        spawn: _Spawn | None = None
        pidfd = -1
        exit_waiter: _Waiter | None = None
        try:
            spawn = self._take()
            pid = self._await(spawn)
            slot = spawn.slot
            slots = self._slots_()
            exit_waiter = self._watch_exit(pid, lambda: slots.exited(slot))
            exited = exit_waiter.event
            # A pidfd names this process, not its number: no kill can hit a reused pid.
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                pidfd = -1

            def exit_status() -> tuple[int, float] | None:
                # The channel broke: the process is dying or dead; its status says how.
                assert exit_waiter is not None
                if exit_waiter.event.wait(2.0) and exit_waiter.reply:
                    return exit_waiter.reply.status, exit_waiter.reply.cpu_s
                return None

            prog = _Program(
                spawn.sock,
                pid,
                time.monotonic() + SETUP_TIMEOUT_S,
                exit_status,
                self.limits.cpu_s,
                lambda: slots.oom_killed(slot),
                # Only where programs have CPU shares: elsewhere a long program's first wait
                # would be split for nothing.
                (lambda: slots.boost(slot, exited)) if self._boosts else None,
            )
            try:
                # Queued now, read by the program once it is set up: no round trip waits
                # on "ready". Its code cannot run before it has said it is ready, so a death
                # before that is still the sandbox's fault, not the candidate's.
                prog.send({"code": code, "entry_point": entry_point})
                hello = prog.recv()
            except CandidateFailed as exc:
                raise SandboxFault(
                    f"program process failed in set-up: {exc.verdict.detail}"
                ) from None
            if not hello.get("ready"):
                raise SandboxFault(f"set-up failed: {str(hello.get('setup_failed', hello))[:300]}")
            # From here on the candidate's code is in the process: failures are its own.
            prog.start(self.limits.wall_s)
            try:
                # Sent while the program compiles its code: read right after it has loaded.
                prog.prefetch(ahead)
                loaded = prog.recv()
                if not loaded.get("loaded"):
                    reason = {
                        "syntax": reasons.SYNTAX_ERROR,
                        "memory": reasons.MEMORY_LIMIT,
                        "missing_entry_point": reasons.MISSING_ENTRY_POINT,
                    }.get(str(loaded.get("error")), reasons.RUNTIME_ERROR)
                    return Verdict.fail(reason, str(loaded.get("detail", ""))[:500])
                verdict = driver(prog.call)
            except CandidateFailed as exc:
                return exc.verdict
            # A test that caught the program's death (`except BaseException:`) still fails.
            return prog.failed.verdict if prog.failed is not None else verdict
        finally:
            if pidfd >= 0:
                # The pid is init of the program's pid namespace: SIGKILL takes every
                # descendant down with it.
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.close(pidfd)
            # The kernel tears the process down on its own time; its slot goes back to the
            # pool when the zygote reports the exit (a dying program never shares a uid),
            # and is retired if that never comes.
            if spawn is not None:
                if exit_waiter is None:
                    self._slots_().unused(spawn.slot)  # never spawned: nothing holds it
                else:
                    self._slots_().killed(spawn.slot, exit_waiter.event)
                spawn.sock.close()
            self._running.release()

    def memory_peak_bytes(self) -> int | None:
        """The most memory the sandbox's programs held together (None without cgroups)."""
        return self.cgroups.memory_peak() if self.cgroups else None

    def idle_pids(self) -> list[int]:
        """Clones asked for ahead that have not been given a program (yet)."""
        with self._spare_lock:
            spares = list(self._spare)
        return [
            s.waiter.reply
            for s in spares
            if s.waiter.event.wait(SETUP_TIMEOUT_S) and (s.waiter.reply or 0) > 0
        ]

    def close(self) -> None:
        """Stop the zygote and everything it runs and give back the uids, cgroups and host
        directory. A second call does nothing: the descriptors closed here may have been
        reused by then."""
        with self._spare_lock:
            if self._closed:
                return
            self._closed = True
            # A clone waiting for code reads the end of its channel and exits.
            for spawn in self._spare:
                spawn.sock.close()
            self._spare.clear()
        for slot in list(self._slot_socks):
            self._close_slot(slot)
        try:
            # shutdown, not just close: the reader thread's pending recv keeps the socket
            # open otherwise, and the zygote would never see the end of its control channel.
            with contextlib.suppress(OSError):
                self._ctl.shutdown(socket.SHUT_RDWR)
            self._ctl.close()
        finally:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._release()

    def _release(self) -> None:
        # Programs without namespaces worked in here (`child.make_workdir`); a slot server
        # killed at close may not have removed the last ones.
        remove_workdir(self._workdirs)
        os.close(self._workdirs_lock)
        if self._slots is not None:
            self._slots.close()
        if self.cgroups is not None:
            self.cgroups.close()
        self._block.release()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
