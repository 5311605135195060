"""Stress: about 300 programs, a third of them honest and the rest drawn from every class of
attack in test_sandbox_isolation.py, stored as samples in a real warehouse and verified
the way the pipeline does it (`select_pending` + `run_verify`).

Every hostile program is written so that it passes only if its attack works (it returns
the planted secret, a note another program left, a count only an escape allows, ...).
Afterwards: one stored verdict per sample, every honest program passed, no hostile one did,
nothing runs under the sandbox's uids, nothing new is on the host, and the memory of all
programs together stayed within workers x the per-program limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sysconfig
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from distillery.filters.registry import Verifiers
from distillery.filters.sandbox.child import Limits
from distillery.filters.sandbox.runner import Sandbox
from distillery.filters.verification import run_verify, select_pending
from distillery.warehouse.records import PromptRecord, SampleRecord
from distillery.warehouse.store import Warehouse
from tests.conftest import ROOT
from tests.filters.sandbox.test_sandbox_isolation import (
    EXHAUST,
    FORK_MANY,
    HOLD_FORK,
    IPC,
    MALFORMED,
    MARKED_NAME,
    SPIN_SESSIONS,
    fenced,
    holding_uids,
    program,
    raw_frame,
    wait_gone,
)

pytestmark = pytest.mark.attack

MARK = f"dstlstress{os.getpid()}x{uuid.uuid4().hex[:8]}"  # in every name an attack makes
PLANT = f"dstlplant{os.getpid()}x{uuid.uuid4().hex[:8]}"  # in the planted secrets' names
SECRET = f"distillery-stress-secret-{uuid.uuid4().hex}"
SUITE, RUN = "sandbox-stress", "run-stress"
WORKERS = 4
LIMITS = Limits(wall_s=3.0, cpu_s=3, memory_mb=256, processes=16)
MIB = 1024 * 1024


def _cases(entry: str, *pairs: tuple[list[Any], Any]) -> dict[str, Any]:
    return {
        "kind": "code_tests",
        "entry_point": entry,
        "cases": [{"args": a, "expected": e} for a, e in pairs],
    }


def _check(entry: str, test: str) -> dict[str, Any]:
    return {"kind": "code_tests", "entry_point": entry, "test": test}


Item = tuple[str, dict[str, Any], str]  # (family, spec, program text)


# ------------------------------------------------------------------ honest programs


def honest(i: int) -> list[Item]:
    """One of each honest kind, varied by `i`: small HumanEval-like functions."""
    words = ["apple", "kiwi", "banana", "fig", "cherry", "date"]
    xs = [(i * 7 + k * 3) % 11 for k in range(8)]
    n = 10 + i % 15
    fib = [0, 1]
    while len(fib) <= n:
        fib.append(fib[-1] + fib[-2])
    text = " ".join(words[: 2 + i % 4] * 2)
    freq: dict[str, int] = {}
    for w in text.split():
        freq[w] = freq.get(w, 0) + 1
    out: list[Item] = [
        (
            "honest",
            _cases("add", ([1, 2], 3 + i), ([i, -i], i)),
            f"def add(a, b):\n    return a + b + {i}\n",
        ),
        (
            "honest",
            _cases("rev", ([f"abc{i}"], f"abc{i}"[::-1]), ([""], "")),
            "```python\ndef rev(s):\n    return s[::-1]\n```",
        ),
        (
            "honest",
            _cases("fib", ([n], fib[n]), ([0], 0), ([1], 1)),
            "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
            "    return a\n",
        ),
        (
            "honest",
            _cases("is_prime", ([97 + i * 2], _prime(97 + i * 2)), ([1], False), ([2], True)),
            "import math\n\ndef is_prime(n):\n    if n < 2:\n        return False\n"
            "    return all(n % d for d in range(2, math.isqrt(n) + 1))\n",
        ),
        (
            "honest",
            _cases("uniq", ([xs], sorted(set(xs)))),
            "def uniq(xs):\n    return sorted(set(xs))\n",
        ),
        (
            "honest",
            _cases("freq", ([text], freq)),
            "from collections import Counter\n\n"
            "def freq(s):\n    return dict(Counter(s.split()))\n",
        ),
        (
            "honest",
            _check(
                "total",
                "def check(candidate):\n"
                f"    assert candidate({xs}) == {sum(xs)}\n"
                "    assert candidate([]) == 0\n"
                "    assert abs(candidate([0.5, 0.25]) - 0.75) < 1e-9\n",
            ),
            "Here you go:\n```python\ndef total(xs):\n    return sum(xs)\n```\n",
        ),
        (
            "honest",
            _check(
                "sqrt_int",
                "def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError:\n"
                "        pass\n    else:\n        assert False\n"
                f"    assert candidate({(i + 3) ** 2}) == {i + 3}\n",
            ),
            "import math\n\nclass NegativeError(ValueError):\n    pass\n\n"
            "def sqrt_int(n):\n    if n < 0:\n        raise NegativeError(n)\n"
            "    return math.isqrt(n)\n",
        ),
        (
            "honest",
            _cases("roundtrip", ([f"line {i}"], f"line {i}")),
            "import os, tempfile\n\ndef roundtrip(s):\n"
            "    path = os.path.join(tempfile.gettempdir(), 'note.txt')\n"
            "    with open(path, 'w') as fh:\n        fh.write(s)\n"
            "    with open(path) as fh:\n        return fh.read()\n",
        ),
        (
            "honest",
            _cases("forked", ([i % 50], i % 50)),
            "import os\n\ndef forked(n):\n    pid = os.fork()\n    if pid == 0:\n"
            "        os._exit(n)\n    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n",
        ),
        (
            "honest",
            _cases("squares", ([6], 55)),
            "import threading\n\ndef squares(n):\n    out = []\n"
            "    ts = [threading.Thread(target=lambda k=k: out.append(k * k)) for k in range(n)]\n"
            "    for t in ts:\n        t.start()\n    for t in ts:\n        t.join()\n"
            "    return sum(out)\n",
        ),
        (
            "honest",
            _cases("mean", ([[1, 2, 3, 4 + i]], (10 + i) / 4)),
            "def mean(xs):\n    return sum(xs) / len(xs)\n",
        ),
        (
            "honest",
            _cases("transpose", ([[[1, 2, i], [3, 4, 5]]], [[1, 3], [2, 4], [i, 5]])),
            "def transpose(m):\n    return [list(r) for r in zip(*m)]\n",
        ),
        (
            "honest",
            _cases("spin", ([300_000 + i], _spin(300_000 + i))),
            "def spin(n):\n    s = 0\n    for k in range(n):\n        s = (s + k * k) % 1000003\n"
            "    return s\n",
        ),
        (
            "honest",
            _cases("depth", ([400], 400)),
            "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n",
        ),
    ]
    if i % 3 == 0:
        out.append(
            (
                "honest",
                _cases("child", ([i], 42 + i)),
                "import subprocess, sys\n\ndef child(n):\n"
                "    r = subprocess.run([sys.executable, '-c', 'print(6 * 7)'],\n"
                "                       capture_output=True, text=True, timeout=20)\n"
                "    return int(r.stdout) + n\n",
            )
        )
    return out


def _prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _spin(n: int) -> int:
    s = 0
    for k in range(n):
        s = (s + k * k) % 1000003
    return s


# ------------------------------------------------------------------ hostile programs

F = "f"
CASES5 = _cases(F, ([2, 3], 5))


def _expect(value: Any) -> dict[str, Any]:
    return _cases(F, ([], value))


def hostile(i: int, planted: list[str]) -> list[Item]:
    """One of each hostile kind, varied by `i`. Each passes only if its attack works."""
    key = 1_000_000 + i * 1000 + random.randrange(1000)
    note = f"note-{uuid.uuid4().hex}"
    name = f"{MARK}-{i}"
    targets = ["/var/tmp", "/run/lock", "/dev/shm", "/run", "/", "/etc", "/opt", "/var/lib"]
    targets += [str(ROOT), str(ROOT / "tests"), sysconfig.get_paths()["purelib"], str(Path.home())]
    items: list[Item] = [
        # 1. reading host data
        (
            "read",
            _expect(SECRET),
            program(
                r"""
                import os, time
                def f():
                    deadline = time.monotonic() + 2.5
                    for root, dirs, files in os.walk('/'):
                        if root == '/':
                            dirs[:] = [d for d in dirs if d not in ('proc', 'sys')]
                        if time.monotonic() > deadline:
                            break
                        for name in files:
                            if @PLANT@ in name:
                                try:
                                    with open(os.path.join(root, name)) as fh:
                                        return fh.read()
                                except OSError:
                                    pass
                    return None""",
                PLANT=PLANT,
            ),
        ),
        (
            "read",
            _expect(SECRET),
            program(
                r"""
                def f():
                    for prefix in ('', '/proc/self/root', '/proc/1/root', '/dev/fd/../root'):
                        for path in @PLANTED@:
                            try:
                                with open(prefix + path) as fh:
                                    return fh.read()
                            except OSError:
                                pass""",
                PLANTED=planted[i % len(planted) :] + planted[: i % len(planted)],
            ),
        ),
        (
            "read",
            _expect(True),
            program(
                r"""
                import importlib
                def f():
                    # The sandbox's own modules are loaded in every program (it runs
                    # them); none of the rest of the package, and nothing else, is there.
                    for name in ('distillery.tasks.seeds_code', 'distillery.warehouse.store',
                                 'distillery.filters.verification', 'tasks', 'warehouse',
                                 'jsonschema', 'duckdb', 'pytest'):
                        try:
                            importlib.import_module(name)
                            return True
                        except BaseException:
                            pass
                    return False"""
            ),
        ),
        (
            "read",
            _expect(True),
            program(
                r"""
                import os
                def f():
                    for d in (@ROOT@, @ROOT@ + '/.git', @SITE@):
                        try:
                            if os.listdir(d):
                                return True
                        except OSError:
                            pass
                    return False""",
                ROOT=str(ROOT),
                SITE=sysconfig.get_paths()["purelib"],
            ),
        ),
        # 2. writing the host
        (
            "write",
            _expect(1),
            program(
                r"""
                import os
                def f():
                    for d in @TARGETS@:
                        if os.path.realpath(d).startswith('/tmp'):
                            continue  # (/dev/shm may be the program's own /tmp)
                        try:
                            with open(os.path.join(d, @NAME@), 'x') as fh:
                                fh.write('pwned')
                            return 1
                        except OSError:
                            pass
                    return 0""",
                TARGETS=targets,
                NAME=name + "-w",
            ),
        ),
        (
            "write",
            _expect(1),
            program(
                r"""
                def f():
                    for d in @TARGETS@:
                        if os.path.realpath(d).startswith('/tmp'):
                            continue
                        p = os.path.join(d, @NAME@).encode()
                        if libc.syscall(NR['mknodat'], -100, p, 0o010644, 0) == 0:
                            return 1
                        if libc.syscall(NR['symlinkat'], b'/etc/passwd', -100, p + b'l') == 0:
                            return 1
                    return 0""",
                raw=True,
                TARGETS=targets,
                NAME=name + "-r",
            ),
        ),
        # 4. namespaces and mounts
        (
            "namespaces",
            _expect(1),
            program(
                r"""
                def f():
                    flags = [0x10000000, 0x10020000, 0x20000, 0x20000000, 0x08000000][@I@ % 5]
                    pid = libc.syscall(NR['clone'], flags | 17, 0, 0, 0, 0)
                    if pid == 0:
                        libc.syscall(NR['exit_group'], 0)
                    if pid > 0:
                        os.waitpid(pid, 0)
                        return 1
                    args = struct.pack('=11Q', 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)
                    pid = libc.syscall(NR['clone3'], args, ctypes.c_size_t(len(args)))
                    if pid == 0:
                        libc.syscall(NR['exit_group'], 0)
                    if pid > 0:
                        os.waitpid(pid, 0)
                        return 1
                    if libc.unshare(0x10000000) == 0:
                        return 1
                    return 1 if libc.syscall(NR['fsopen'], b'tmpfs', 0) >= 0 else 0""",
                raw=True,
                I=i,
            ),
        ),
        # 5. limits
        ("limits", _cases(F, ([4, 150], 4)), HOLD_FORK),
        ("limits", _cases(F, ([], 50)), FORK_MANY.replace("while n < 200", "while n < 50")),
        ("limits", CASES5, SPIN_SESSIONS),
        # 6. budgets shared with others
        ("uids", CASES5, EXHAUST),
        ("uids", _expect(True), "import os\ndef f():\n    return os.getuid() < 1000\n"),
        # 7/8. the parent
        (
            "parent",
            _check(F, "def check(candidate):\n    assert abs(candidate(1) - 0.5) < 1e-6\n"),
            "def f(x):\n    return 10 ** 400\n",
        ),
        (
            "parent",
            _check(F, "def check(candidate):\n    assert next(iter(candidate(1))) == 3\n"),
            "def f(x):\n    return []\n",
        ),
        ("parent", CASES5, raw_frame(list(MALFORMED.values())[i % len(MALFORMED)])),
        ("parent", CASES5, f"def f(a, b):\n    raise ValueError('bad \\udc80 input {i}')\n"),
        (
            "parent",
            _check(F, "def check(candidate):\n    assert candidate(2, 3) == 5, candidate(2, 3)\n"),
            "def f(a, b):\n    return 'x\\ud800y'\n",
        ),
        # 10. exceptions
        (
            "exceptions",
            _check(F, "def check(candidate):\n    assert all(map(candidate, [2, 4, 6]))\n"),
            "def f(x):\n    raise StopIteration\n",
        ),
        (
            "exceptions",
            _check(F, "def check(candidate):\n    assert candidate(2) == 4\n"),
            "def f(x):\n    raise "
            + ["SystemExit(0)", "KeyboardInterrupt", "GeneratorExit"][i % 3]
            + "\n",
        ),
        (
            "exceptions",
            _check(
                F,
                "def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError:\n"
                "        pass\n    else:\n        assert False\n    assert candidate(2) == 4\n",
            ),
            "class ValueError(Exception):\n    pass\n\ndef f(x):\n    if x < 0:\n"
            "        raise ValueError(x)\n    return x * x\n",
        ),
        # classics
        ("classic", CASES5, "def f(a, b):\n    while True:\n        pass\n"),
        ("classic", CASES5, "import time\ndef f(a, b):\n    time.sleep(100)\n"),
        ("classic", CASES5, "def f(a, b):\n    x = bytearray(8 << 30)\n    return 5\n"),
        ("classic", CASES5, "import os\ndef f(a, b):\n    while True:\n        os.fork()\n"),
        ("classic", CASES5, "def f(a, b):\n    while True:\n        print('PASSED' * 100)\n"),
        (
            "classic",
            CASES5,
            "class Any:\n    def __eq__(self, other):\n        return True\n"
            "def f(a, b):\n    return Any()\n",
        ),
    ]
    # 3. IPC: a writer that cannot pass, then a reader that passes only if it reads the note
    mech = ["sysv_shm", "sysv_msg", "sysv_sem", "posix_mq"][i % 4]
    ipc = program(IPC, raw=True, KEY=key, NOTE=note, NAME=name)
    # What the reader returns when the note got through.
    want = {
        "sysv_shm": f"segment: {note}",
        "sysv_msg": f"queue: {note}",
        "sysv_sem": "semaphore: 4242",
        "posix_mq": f"queue: {note}",
    }[mech]
    items.append(("ipc-writer", _cases(F, (["write", mech, 0.0], "never")), ipc))
    items.append(("ipc-reader", _cases(F, (["read", mech, 0.0], want)), ipc))
    return items


def colliding(n: int) -> str:
    body = (
        f"M, N = 2 ** 61 - 1, {n}\n    "
        'body = (\'{"value":{"$s":[\' + \',\'.join(\'{"$i":"%d"}\' % (k * M) '
        "for k in range(1, N + 1)) + ']}}').encode()"
    )
    return raw_frame("b''").replace("    body = b''", "    " + body)


def build(planted: list[str]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(sample_id, family, spec, text) for every sample, honest ones first in the id order
    nowhere: the order is shuffled, except that an IPC reader follows its writer."""
    items: list[Item] = []
    for i in range(7):
        items += honest(i)
    for i in range(7):
        items += hostile(i, planted)
    items.append(("parent", CASES5, colliding(50_000)))
    items.append(("parent", CASES5, colliding(50_000).replace('"$s"', '"$fs"')))
    items.append(("parent", CASES5, "X = '" + "a" * (17 * MIB) + "'\ndef f(a, b):\n    return 5\n"))
    rng = random.Random(7)
    order = list(range(len(items)))
    rng.shuffle(order)
    shuffled = [items[k] for k in order]
    # Keep each reader after its writer (they are adjacent in `items`).
    pos = {k: p for p, k in enumerate(order)}
    for k, (family, _, _) in enumerate(items):
        if family == "ipc-reader" and pos[k] < pos[k - 1]:
            a, b = pos[k], pos[k - 1]
            shuffled[a], shuffled[b] = shuffled[b], shuffled[a]
            pos[k], pos[k - 1] = b, a
    return [
        (f"smp-{p:04d}-{family}", family, spec, text if "```" in text else fenced(text))
        for p, (family, spec, text) in enumerate(shuffled)
    ]


# ------------------------------------------------------------------ the host, before and after


def snapshot(ignore: list[str]) -> dict[str, int]:
    """Every path under the places a program might write to, less `ignore`, with its
    owner's uid."""
    roots = ["/tmp", "/var/tmp", "/run/lock", "/dev/shm", str(ROOT)]
    skip = {*ignore, str(ROOT / ".git")}
    paths: dict[str, int] = {}
    for base in roots:
        for root, dirs, files in os.walk(base):
            dirs[:] = [
                d
                for d in dirs
                if d != "__pycache__"
                and os.path.join(root, d) not in skip
                # this project's own machinery under /tmp (Prefect homes, uid locks) and
                # pytest's directories, which other sessions may be writing right now
                and not (root == "/tmp" and d.startswith(("distillery-", "pytest-of-")))
            ]
            for n in dirs + files:
                path = os.path.join(root, n)
                with contextlib.suppress(OSError):
                    paths[path] = os.lstat(path).st_uid
    return paths


def new_files(before: dict[str, int], after: dict[str, int], uids: range) -> list[str]:
    """Paths that appeared in the repository, or anywhere owned by a sandbox uid (other
    processes on the host may create files in /tmp meanwhile; a program's file would be
    its uid's: it cannot chown).

    The isolation suite, running in another pytest worker meanwhile, plants its own
    secrets in the repository's virtual environment (names holding its marker, owned by
    the test's user, not by a sandbox uid): those are not this test's programs' doing.
    """
    return sorted(
        p
        for p, uid in after.items()
        if p not in before
        and (p.startswith(f"{ROOT}/") or uid in uids)
        and not (uid not in uids and any(map(MARKED_NAME.match, Path(p).parts)))
    )


def marked() -> list[str]:
    hits = []
    for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/run", "/etc", "/opt", "/var/lib"):
        with contextlib.suppress(OSError):
            hits += [os.path.join(d, n) for n in os.listdir(d) if MARK in n]
    with contextlib.suppress(OSError):
        hits += [str(Path.home() / n) for n in os.listdir(Path.home()) if MARK in n]
    hits += [str(p) for p in ROOT.rglob(f"*{MARK}*")]
    return sorted(hits)


@pytest.fixture
def planted():
    """The secret in host places a reading program may look."""
    made: list[Path] = []
    project = ROOT / "tests" / f".{PLANT}"
    try:
        project.mkdir()
        made.append(project)
        for d in (project, Path("/var/tmp"), Path("/run/lock"), Path.home()):
            path = d / f"{PLANT}.txt"
            path.write_text(SECRET)
            path.chmod(0o644)
            made.append(path)
        yield [str(p) for p in made[1:]]
    finally:
        for p in reversed(made):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        for leftover in marked():  # whatever an attack left; the test has looked already
            with contextlib.suppress(OSError):
                if os.path.isdir(leftover) and not os.path.islink(leftover):
                    shutil.rmtree(leftover)
                else:
                    os.unlink(leftover)


def _rows(wh: Warehouse, items) -> None:
    prompts, samples = [], []
    for sid, family, spec, text in items:
        prompts.append(
            PromptRecord(f"prm-{sid}", SUITE, family, "test", "[]", json.dumps(spec), None, RUN)
        )
        samples.append(
            SampleRecord(
                sample_id=sid,
                prompt_id=f"prm-{sid}",
                model_id="mdl-stress",
                run_id=RUN,
                backend="test",
                idx=0,
                seed=0,
                temperature=0.0,
                top_p=1.0,
                max_new_tokens=0,
                text=text,
                prompt_tokens=0,
                completion_tokens=0,
                finish_reason="stop",
                latency_s=0.0,
            )
        )
    wh.write(prompts)
    wh.write(samples)


def test_three_hundred_programs_through_the_warehouse(tmp_path, tmp_path_factory, planted):
    items = build(planted)
    honest_ids = {sid for sid, family, _, _ in items if family == "honest"}
    assert len(items) >= 290 and 3 * len(honest_ids) >= len(items), (len(items), len(honest_ids))
    wh = Warehouse.open(tmp_path / "wh")
    _rows(wh, items)

    verifiers = Verifiers(workers=WORKERS)
    sb = Sandbox(workers=WORKERS, limits=LIMITS)
    verifiers._sandbox = sb  # the registry's own sandbox, with small limits
    closed = False
    try:
        assert verifiers.sandbox is sb
        uids = sb.uid_range
        ignore = [str(tmp_path), str(tmp_path_factory.getbasetemp())]
        ignore += [os.environ.get("PREFECT_HOME", "")]
        before = snapshot(ignore)
        pending, already = select_pending(wh, SUITE, None, None, verifiers)
        assert (len(pending), already) == (len(items), 0)
        t0 = time.monotonic()
        summary = run_verify(wh, pending, verifiers, RUN, workers=WORKERS)
        took = time.monotonic() - t0
        peak = sb.memory_peak_bytes()
        verifiers.close()
        closed = True
        with holding_uids(sb):
            left = wait_gone(uids)
            after = snapshot(ignore)
    finally:
        if not closed:
            verifiers.close()

    stored = dict(wh.query("SELECT sample_id, count(*) FROM verdicts GROUP BY sample_id"))
    missing = sorted({sid for sid, *_ in items} - set(stored))
    assert missing == [] and set(stored.values()) == {1}, (missing[:20], summary.faults)
    passed = dict(wh.query("SELECT sample_id, passed FROM verdicts"))
    reasons_of = dict(wh.query("SELECT sample_id, reason || ': ' || detail FROM verdicts"))
    honest_failed = {s: reasons_of[s][:200] for s in sorted(honest_ids) if not passed[s]}
    hostile_passed = sorted(s for s in passed if s not in honest_ids and passed[s])
    assert honest_failed == {}
    assert hostile_passed == []
    assert left == [], f"still running under the sandbox's uids: {left}"
    assert new_files(before, after, sb.uid_range) == [] and marked() == []
    assert peak is not None and peak <= WORKERS * LIMITS.memory_mb * MIB, peak
    assert took < 180, f"run_verify took {took:.0f} s"


def _families(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, family, _, _ in items:
        out[family] = out.get(family, 0) + 1
    return out


def test_the_mix_covers_every_class():
    items = build(["/nowhere/secret.txt"])
    families = _families(items)
    assert set(families) == {
        "honest",
        "read",
        "write",
        "ipc-writer",
        "ipc-reader",
        "namespaces",
        "limits",
        "uids",
        "parent",
        "exceptions",
        "classic",
    }
    assert len({sid for sid, *_ in items}) == len(items)
    # Every IPC reader is verified after its writer.
    ids = [sid for sid, *_ in items]
    readers = [k for k, (_, family, _, _) in enumerate(items) if family == "ipc-reader"]
    assert all(items[k][3] in [t for _, f, _, t in items[:k] if f == "ipc-writer"] for k in readers)
    assert ids == sorted(ids)
