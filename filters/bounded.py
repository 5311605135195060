"""Text verifiers under a time budget, in worker processes that can be killed.

math-verify (sympy) and `re` run in C holding the GIL, so neither a signal nor a thread
can stop them: `\\boxed{10^{10^{8}}}` kept sympy busy for over 300 s. The verifiers that can
run super-linearly on hostile text (math answers, task regexes on the completion, JSON
Schema validation: `pattern`, `uniqueItems`) therefore run here, in a pool of persistent
worker processes. The caller waits at most its budget for the verdict; on overrun it
kills the worker (SIGKILL), returns `timeout`, and a replacement starts in the background.

Workers are `python -m filters.bounded` children: a fresh interpreter that imports only
the text verifiers (no fork of a process that may hold torch, no re-import of the
caller's `__main__`). They talk length-prefixed ASCII JSON over their stdin and stdout,
so lone surrogates cross intact. Each one also caps its own CPU time and address space,
so a worker whose parent died cannot run on. Waiting for a free worker, or for a new
one to start, is not counted in the budget: the budget measures the verifier's work.

The cheap verifiers (exact and numeric answers, style) are linear in the text and run in
the caller's thread; the registry only checks that the budget is not already spent.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distillery.filters import reasons
from distillery.filters import spec as specs
from distillery.filters.base import Verdict

BUDGET_ENV = "DISTILLERY_VERIFY_BUDGET_S"
# Seconds one verdict may spend in text verifiers (all children of a composite together).
DEFAULT_BUDGET_S = 5.0
# Workers at once (callers beyond wait for a free one: the work is CPU-bound).
MAX_WORKERS = max(
    2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
)
START_TIMEOUT_S = 120.0
WORKER_MEMORY_BYTES = 2 << 30  # address space a worker may add on top of its imports
_HEADER = struct.Struct(">Q")
_MAX_REPLY = 1 << 20
_ROOT = str(Path(__file__).resolve().parents[1])

_deadline: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "verify_deadline", default=None
)


def budget_s() -> float:
    """The per-verdict budget: DISTILLERY_VERIFY_BUDGET_S, else DEFAULT_BUDGET_S."""
    try:
        value = float(os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET_S)
    except ValueError:
        return DEFAULT_BUDGET_S
    return value if value > 0 else DEFAULT_BUDGET_S


def needs_worker(spec: dict[str, Any]) -> bool:
    """Whether a leaf spec's verifier can be super-linear on hostile text."""
    kind = spec.get("kind")
    if kind == specs.ANSWER:
        return spec.get("match") == "math"
    return kind in (specs.REGEX, specs.JSON_SCHEMA)


@contextlib.contextmanager
def deadline() -> Iterator[Callable[[], float]]:
    """Seconds left of this verdict's budget, as a function. The outermost call (one
    verdict) starts the clock; nested calls (a composite's children) share it."""
    current = _deadline.get()
    token = None
    if current is None:
        current = [time.monotonic() + budget_s()]
        token = _deadline.set(current)
    try:
        yield lambda: current[0] - time.monotonic()
    finally:
        if token is not None:
            _deadline.reset(token)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Time spent inside is not charged to the budget (a code sandbox, a judge call)."""
    current = _deadline.get()
    t0 = time.monotonic()
    try:
        yield
    finally:
        if current is not None:
            current[0] += time.monotonic() - t0


def timed_out(budget: float) -> Verdict:
    return Verdict.fail(reasons.TIMEOUT, f"verification ran past its {budget:g} s budget")


def error_verdict(exc: BaseException, where: str = "verifier") -> Verdict:
    """`verifier_error`: the verifier itself failed on this input. Stored, never a success."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    line = " ".join(f"{type(exc).__name__}: {message}"[:400].split())
    return Verdict.fail(reasons.VERIFIER_ERROR, f"{where} failed: {line}"[:300], score=None)


def run(spec: dict[str, Any], text: str, budget: float) -> Verdict:
    """`spec`'s verdict on `text` from a worker, or `timeout` after `budget` seconds."""
    if budget <= 0:
        return timed_out(budget_s())
    return _pool().run(spec, text, budget)


def shutdown() -> None:
    """Stop the idle workers (busy ones stop when their call ends); a later call starts
    new ones."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()


# --- the caller's side -----------------------------------------------------------------


class _WorkerStartError(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "distillery.filters.bounded"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
                close_fds=True,
                cwd=_ROOT,
                env=env,
            )
        except OSError as exc:
            raise _WorkerStartError(f"cannot start: {exc}") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._out = self.proc.stdin.fileno()
        self._in = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        try:
            hello = self._read(time.monotonic() + START_TIMEOUT_S)
        except (OSError, ValueError, EOFError, TimeoutError) as exc:
            self.kill()
            raise _WorkerStartError(f"did not start: {type(exc).__name__} {exc}") from None
        if hello.get("ready") is not True:
            self.kill()
            raise _WorkerStartError(f"did not start: {str(hello.get('error'))[:200]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]

    @staticmethod
    def _wait(fd: int, events: int, until: float) -> bool:
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError
        poller = select.poll()  # not select(): descriptors past 1024 are common here
        poller.register(fd, events)
        return bool(poller.poll(max(1, int(left * 1000) + 1)))

    def _write(self, data: bytes, until: float) -> None:
        view = memoryview(data)
        while view:
            if self._wait(self._out, select.POLLOUT, until):
                try:
                    n = os.write(self._out, view[: 1 << 20])
                except BlockingIOError:
                    continue
                view = view[n:]

    def _read_exact(self, n: int, until: float) -> bytes:
        parts, got = [], 0
        while got < n:
            if self._wait(self._in, select.POLLIN, until):
                chunk = os.read(self._in, min(n - got, 1 << 20))
                if not chunk:
                    raise EOFError
                parts.append(chunk)
                got += len(chunk)
        return b"".join(parts)

    def _read(self, until: float) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(_HEADER.size, until))
        if size > _MAX_REPLY:
            raise ValueError(f"reply of {size} bytes")
        reply = json.loads(self._read_exact(size, until))
        if not isinstance(reply, dict):
            raise ValueError("reply is not an object")
        return reply

    def call(self, frame: bytes, budget: float) -> dict[str, Any]:
        """The worker's reply; TimeoutError past the budget, EOFError if it died."""
        until = time.monotonic() + budget
        self._write(frame, until)
        return self._read(until)


class _Pool:
    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy += 1
                        return worker
                    worker.kill()
                if self._busy < MAX_WORKERS:
                    self._busy += 1
                    break
                self._cond.wait()
        try:
            return _Worker()  # outside the lock: starting takes a moment
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            self._busy -= 1
            if worker is not None and not self._closed:
                self._idle.append(worker)
                worker = None
            self._cond.notify()
        if worker is not None:
            worker.kill()

    def _replace(self) -> None:
        """Start a worker for the next caller now, rather than on its call."""

        def start() -> None:
            with self._cond:
                if self._closed or self._busy >= MAX_WORKERS:
                    return
                self._busy += 1
            try:
                worker = _Worker()
            except _WorkerStartError:
                self._release(None)
                return
            self._release(worker)

        with contextlib.suppress(RuntimeError):  # no new threads at interpreter exit
            threading.Thread(target=start, name="bounded-replace", daemon=True).start()

    def run(self, spec: dict[str, Any], text: str, budget: float) -> Verdict:
        request = json.dumps({"spec": spec, "text": text, "budget": budget}).encode("ascii")
        frame = _HEADER.pack(len(request)) + request
        for attempt in range(2):
            try:
                worker = self._acquire()
            except _WorkerStartError as exc:
                return Verdict.fail(reasons.SANDBOX_ERROR, f"text verifier worker {exc}", None)
            try:
                reply = worker.call(frame, budget)
            except TimeoutError:
                self._discard(worker)
                return timed_out(budget_s())
            except (BrokenPipeError, EOFError, ConnectionResetError) as exc:
                try:
                    code: int | None = worker.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                self._discard(worker, replace=False)
                if isinstance(exc, BrokenPipeError) and attempt == 0:
                    continue  # it died while idle (not on this input): once more, fresh
                self._replace()
                if code == -signal.SIGXCPU:
                    return timed_out(budget_s())
                return Verdict.fail(
                    reasons.VERIFIER_ERROR,
                    f"text verifier worker died on this input (exit {code})",
                    None,
                )
            except (OSError, ValueError) as exc:
                self._discard(worker)
                return error_verdict(exc, "text verifier worker")
            except BaseException:  # an interrupt: the worker's state is unknown
                self._discard(worker, replace=False)
                raise
            self._release(worker)
            return _verdict(reply)
        raise AssertionError("unreachable")

    def _discard(self, worker: _Worker, replace: bool = True) -> None:
        worker.kill()
        self._release(None)
        if replace:
            self._replace()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


def _verdict(reply: dict[str, Any]) -> Verdict:
    kind = reply.get("kind")
    if kind == "verdict" and reply.get("reason") in reasons.ALL:
        score = reply.get("score")
        return Verdict(
            bool(reply.get("passed")),
            float(score) if isinstance(score, int | float) else None,
            str(reply.get("reason")),
            str(reply.get("detail", "")),
        )
    if kind == "memory":
        return Verdict.fail(reasons.MEMORY_LIMIT, "verification ran out of memory")
    return Verdict.fail(
        reasons.VERIFIER_ERROR, f"verifier failed: {str(reply.get('error'))[:280]}", None
    )


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _Pool()
        return _POOL


atexit.register(shutdown)


# --- the worker's side -----------------------------------------------------------------


def _serve() -> None:
    import resource

    # The caller decides when a worker stops: Ctrl-C in its terminal is for the caller.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # Frames go over private copies of stdin/stdout; library prints go nowhere.
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    inp, out = os.fdopen(rfd, "rb", buffering=0), os.fdopen(wfd, "wb", buffering=0)

    def send(obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode("ascii")
        out.write(_HEADER.pack(len(data)) + data)

    def receive() -> dict[str, Any] | None:
        header = inp.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(header)
        parts, got = [], 0
        while got < size:
            chunk = inp.read(min(size - got, 1 << 20))
            if not chunk:
                return None
            parts.append(chunk)
            got += len(chunk)
        return json.loads(b"".join(parts))

    try:
        from distillery.filters.base import MAX_DETAIL_CHARS
        from distillery.filters.verifier_answer import AnswerVerifier
        from distillery.filters.verifier_json import JsonSchemaVerifier
        from distillery.filters.verifier_regex import RegexVerifier
        from distillery.filters.verifier_style import StyleVerifier

        by_kind: dict[str, Any] = {
            specs.ANSWER: AnswerVerifier(),
            specs.REGEX: RegexVerifier(),
            specs.JSON_SCHEMA: JsonSchemaVerifier(),
            specs.STYLE: StyleVerifier(),
        }
        # Import and warm math-verify now, so its first use is not charged to a budget.
        by_kind[specs.ANSWER].verify({"kind": "answer", "expected": "1/2", "match": "math"}, "0.5")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = size + WORKER_MEMORY_BYTES
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except Exception as exc:  # reported to the caller, which gives up
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    send({"ready": True})

    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while (request := receive()) is not None:
        # A backstop if the caller is gone: the kernel stops a worker past its budget.
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = int(spent + float(request.get("budget", DEFAULT_BUDGET_S))) + 10
        if cpu_hard == resource.RLIM_INFINITY or soft < cpu_hard:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
        try:
            spec, text = request["spec"], request["text"]
            v = by_kind[spec["kind"]].verify(spec, text)
            reply = {
                "kind": "verdict",
                "passed": v.passed,
                "score": v.score,
                "reason": v.reason,
                "detail": v.detail[:MAX_DETAIL_CHARS],
            }
        except MemoryError:
            reply = {"kind": "memory"}
        except Exception as exc:  # the verifier failed on this input
            try:
                message = str(exc)
            except Exception:
                message = "<unprintable message>"
            reply = {"kind": "error", "error": f"{type(exc).__name__}: {message}"[:400]}
        try:
            send(reply)
        except (ValueError, TypeError):  # a score or detail JSON cannot carry
            send({"kind": "error", "error": "unserialisable verdict"})


if __name__ == "__main__":
    _serve()
