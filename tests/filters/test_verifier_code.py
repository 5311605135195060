import socket
import subprocess
import sys
import time

import pytest

from distillery.filters import reasons
from distillery.filters.base import Verdict
from distillery.filters.registry import Verifiers
from distillery.filters.sandbox.child import Limits
from distillery.filters.sandbox.runner import Ahead, _Program, same_value
from distillery.filters.sandbox.wire import Channel
from distillery.filters.verifier_code import leading_calls, values_equal
from tests.conftest import ROOT

SPEC = {
    "kind": "code_tests",
    "entry_point": "factorial",
    "cases": [
        {"args": [0], "expected": 1},
        {"args": [5], "expected": 120},
        {"args": [-1], "raises": "ValueError"},
    ],
}
GOOD = """```python
def factorial(n):
    if n < 0:
        raise ValueError("negative")
    out = 1
    for i in range(2, n + 1):
        out *= i
    return out
```"""


@pytest.fixture(scope="module")
def vs():
    v = Verifiers(workers=2)
    yield v
    v.close()


def test_values_equal_rules():
    assert values_equal(2.0, 2) and values_equal([1, (2, 3)], [1, [2, 3]])
    assert not values_equal(True, 1) and not values_equal(1, True)
    assert values_equal(0.1 + 0.2, 0.3) and not values_equal(0.31, 0.3)
    assert not values_equal({"a": 1}, {"a": 1, "b": 2}) and not values_equal("1", 1)


@pytest.mark.parametrize(
    ("completion", "reason", "score"),
    [
        (GOOD, reasons.OK, 1.0),
        (GOOD.replace("raise ValueError", "return 0 #"), reasons.WRONG_ANSWER, 2 / 3),
        (GOOD.replace("range(2, n + 1)", "range(2, n)"), reasons.WRONG_ANSWER, 1 / 3),
        (GOOD.replace("raise ValueError", "raise TypeError"), reasons.WRONG_ANSWER, 2 / 3),
        (GOOD.replace("out = 1", "out = undefined"), reasons.RUNTIME_ERROR, 0.0),
        ("```python\ndef factorial(n)\n    return 1\n```", reasons.SYNTAX_ERROR, 0.0),
        ("```python\ndef fact(n):\n    return 1\n```", reasons.MISSING_ENTRY_POINT, 0.0),
        ("No idea, sorry.", reasons.NO_CODE, 0.0),
        ("```python\ndef factorial(n):\n    return '\udcff'\n```", reasons.SYNTAX_ERROR, 0.0),
    ],
)
def test_cases(vs, completion, reason, score):
    v = vs.verify(SPEC, completion)
    assert (v.reason, v.passed) == (reason, reason == reasons.OK)
    assert v.score == pytest.approx(score)
    assert v.seconds >= 0


def test_check_style_tests_stop_at_the_first_failure(vs):
    spec = {
        "kind": "code_tests",
        "entry_point": "add",
        "prefix": 'def add(a, b):\n    """Add."""\n',
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"
        "    assert add(2, 2) == 4\n    assert candidate(-1, 1) == 0\n",
    }
    assert vs.verify(spec, "    return a + b\n").passed
    wrong = vs.verify(spec, "```python\ndef add(a, b):\n    return a * b + 1\n```")
    assert wrong.reason == reasons.WRONG_ANSWER
    assert vs.verify(spec, "    return None\n").reason == reasons.WRONG_ANSWER


def test_leading_calls_reads_only_the_straight_line_start_of_check():
    test = """
def check(candidate):
    import math
    assert candidate([1, 2], k=-3) == 1
    assert math.isclose(abs(candidate((1.0,), k=2)), 0.5)
    x = candidate({"a": None})
    assert True or candidate(7)
    assert candidate(8)
"""
    # The import is simple; the call under `or` may never run: the list ends there.
    assert leading_calls(test, "f") == [
        ([[1, 2]], {"k": -3}),
        ([(1.0,)], {"k": 2}),
        ([{"a": None}], {}),
    ]
    # A call in an assert's message runs only when it fails: that ends the list too.
    msg = "def check(c):\n    assert c(1), 'x'\n    assert c(2) == 1, c(3)\n    assert c(4)\n"
    assert leading_calls(msg, "f") == [([1], {})]
    loop = "def check(c):\n    assert c(1)\n    for i in range(3):\n        assert c(i)\n"
    loop += "    assert c(2)\n"
    assert leading_calls(loop, "f") == [([1], {})]
    # The function's own name counts as a call of it; computed arguments end the list.
    named = (
        "def check(c):\n    assert f('a') == 1\n    y = 2\n    assert c(y) == 2\n    assert c(3)\n"
    )
    assert leading_calls(named, "f") == [(["a"], {})]
    # Rebinding the candidate's name, or two calls in one statement, ends it too.
    assert leading_calls("def check(c):\n    c = print\n    assert c(1)\n", "f") == []
    assert leading_calls("def check(c):\n    assert c(1) == c(2)\n", "f") == []
    passed_on = "def check(c):\n    assert c(1)\n    assert sorted([2, 1], key=c)\n"
    assert leading_calls(passed_on, "f") == [([1], {})]
    assert leading_calls("def check(:\n", "f") == [] and leading_calls("x = 1\n", "f") == []


STATEFUL = """```python
CALLS = []
def f(x):
    CALLS.append(x)
    if x == 3:
        while True:
            pass
    return (x, len(CALLS))
```"""


def test_calls_sent_ahead_are_judged_in_order_and_the_first_failure_ends_the_run(vs):
    spec = {
        "kind": "code_tests",
        "entry_point": "f",
        "cases": [
            {"args": [1], "expected": [1, 1]},
            {"args": [2], "expected": [2, 99]},
            {"args": [3], "expected": [3, 3]},
        ],
    }
    # All three calls go ahead; the third never ends, but the second is already wrong.
    v = vs.verify(spec, STATEFUL)
    assert (v.reason, v.score) == (reasons.WRONG_ANSWER, pytest.approx(1 / 3))
    assert v.seconds < 5
    assert "f(2,) = (2, 2)" in v.detail


def test_a_check_through_a_helper_is_answered_live(vs):
    # The helper might call the candidate: nothing is read ahead, so a stateful candidate
    # sees its calls in exactly the order the test makes them.
    spec = {
        "kind": "code_tests",
        "entry_point": "f",
        "prefix": "def helper(c):\n    return c(10)\n",
        "test": "def check(candidate):\n    assert helper(candidate) == (10, 1)\n"
        "    assert candidate(1) == (1, 2)\n    assert candidate(2) == (2, 3)\n",
    }
    assert leading_calls(spec["test"], "f") == []
    assert vs.verify(spec, STATEFUL.replace("if x == 3:", "if x == 30:")).passed


def test_calls_sent_ahead_that_the_driver_does_not_make_are_dropped(vs):
    code = "CALLS = []\ndef f(x):\n    CALLS.append(x)\n    return [x, CALLS]\n"

    def driver(call):
        got = [call(1), call(2), call(3)]
        return Verdict.ok(detail=repr(got))

    # The first guess is wrong: what was computed ahead is discarded unread, and every
    # call is answered live, after the guessed ones (the program ran them).
    v = vs.sandbox.run(code, "f", driver, ahead=Ahead.of([([5], {}), ([6], {})]))
    assert v.detail == repr([[1, [5, 6, 1]], [2, [5, 6, 1, 2]], [3, [5, 6, 1, 2, 3]]])
    # A right guess is answered from what was computed ahead, in order, each answer as it
    # was when it was computed: the same as live.
    v = vs.sandbox.run(code, "f", driver, ahead=Ahead.of([([1], {}), ([2], {})]))
    assert v.detail == repr([[1, [1]], [2, [1, 2]], [3, [1, 2, 3]]])


def test_asserts_are_tests_even_under_python_dash_o(tmp_path):
    script = tmp_path / "opt.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from distillery.filters.registry import Verifiers\n"
        "spec = {'kind': 'code_tests', 'entry_point': 'add',\n"
        '        \'prefix\': \'def add(a, b):\\n    """Add."""\\n\',\n'
        "        'test': 'def check(candidate):\\n    assert candidate(1, 2) == 3\\n'}\n"
        "v = Verifiers(workers=1)\n"
        "print(sys.flags.optimize, v.verify(spec, '    return a - b\\n').reason)\n"
        "v.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-O", str(script)], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["1", reasons.WRONG_ANSWER], out.stderr[-2000:]


def test_same_value_is_exact_about_types():
    assert same_value([1, (2.5, "x")], [1, (2.5, "x")]) and same_value({"a": {1}}, {"a": {1}})
    assert not same_value(1, 1.0) and not same_value(1, True) and not same_value(0.0, -0.0)
    assert same_value(float("nan"), float("nan")) and not same_value([1], (1,))
    assert not same_value({"a": 1, "b": 2}, {"b": 2, "a": 1}) and not same_value(object(), 1)


def test_a_program_gone_before_the_calls_ahead_arrive_keeps_its_own_reason():
    # The program failed to load and exited while the calls were on their way: the parent
    # must read its report (here, a missing entry point), not call it a crash.
    mine, theirs = socket.socketpair()
    Channel(theirs).send({"error": "missing_entry_point", "detail": "no function 'f'"})
    theirs.close()
    prog = _Program(mine, 0, time.monotonic() + 5, lambda: (0, 0.0), 10.0, lambda: False)
    prog.prefetch(Ahead.of([([1], {}), ([2], {})]))
    assert prog.recv() == {"error": "missing_entry_point", "detail": "no function 'f'"}
    mine.close()


def _check(body: str) -> dict:
    return {"kind": "code_tests", "entry_point": "f", "test": "def check(candidate):\n" + body}


RAISES_FOR_NEGATIVES = """
def check(candidate):
    try:
        candidate(-1)
    except {caught}:
        pass
    else:
        assert False, "no exception"
    assert candidate(2) == 4
"""


@pytest.mark.parametrize(
    ("raised", "caught", "passes"),
    [
        ("ValueError('negative')", "ValueError", True),
        ("KeyError(1)", "LookupError", True),  # caught through its builtin base
        ("ZeroDivisionError()", "ArithmeticError", True),
        ("Bad('negative')", "ValueError", True),  # the candidate's own subclass
        ("Bad('negative')", "Exception", True),
        ("FileNotFoundError('x')", "FileNotFoundError", True),
        ("FileNotFoundError('x')", "OSError", True),
        ("UnicodeDecodeError('utf-8', b'x', 0, 1, 'bad')", "ValueError", True),  # 5 args
        ("TypeError('x')", "ValueError", False),  # not what the test expects
        ("SystemExit(0)", "Exception", False),  # not an Exception in Python either
        ("StopIteration()", "Exception", False),  # never a StopIteration in the parent
    ],
)
def test_the_candidates_exception_is_catchable_in_the_check_as_itself(vs, raised, caught, passes):
    program = f"""
class Bad(ValueError):
    pass

def f(x):
    if x < 0:
        raise {raised}
    return x * x
"""
    spec = {
        "kind": "code_tests",
        "entry_point": "f",
        "test": RAISES_FOR_NEGATIVES.format(caught=caught),
    }
    v = vs.verify(spec, program)
    assert v.passed is passes, v
    if not passes:
        assert v.reason == reasons.RUNTIME_ERROR, v


@pytest.mark.attack  # a program that spins until the wall clock ends it
def test_a_check_that_swallows_everything_cannot_hide_a_timeout():
    spec = _check(
        "    try:\n        candidate(1)\n    except BaseException:\n        pass\n"
        "    try:\n        candidate(2)\n    except BaseException:\n        pass\n"
    )
    program = "def f(x):\n    while True:\n        pass\n"
    # A 2 s wall clock (the default is 10 s): what is tested is that the deadline holds.
    short = Verifiers(workers=1, limits=Limits(wall_s=2.0))
    try:
        started = time.monotonic()
        v = short.verify(spec, program)
    finally:
        short.close()
    assert (v.passed, v.reason) == (False, reasons.TIMEOUT)
    assert 2.0 <= time.monotonic() - started < 10.0  # its own limit, not the default


@pytest.mark.parametrize(
    ("body", "returned"),
    [
        ("    assert abs(candidate(1) - 0.5) < 1e-6\n", "10**400"),  # OverflowError in the check
        ("    assert candidate(1) == 0.5\n", "10**400"),
        ("    assert math.isclose(candidate(1), 0.5)\n", "10**400"),
        ("    assert sorted(candidate(1)) == [1]\n", "[1, 'a', None]"),  # TypeError
        ("    assert candidate(1)[5] == 1\n", "[]"),  # IndexError
        ("    assert str(candidate(1)) == '1'\n", "10**4000"),
        ("    assert candidate(1) == 1\n", "10**5000"),  # too many digits to send: opaque
    ],
)
def test_a_check_tripping_over_the_returned_value_is_a_wrong_answer(vs, body, returned):
    spec = _check(body)
    spec["prefix"] = "import math\n"
    v = vs.verify(spec, f"```python\nimport math\ndef f(x):\n    return {returned}\n```")
    assert (v.passed, v.reason) == (False, reasons.WRONG_ANSWER), v


def test_cases_compare_totally(vs):
    spec = {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [1], "expected": 0.5}]}
    v = vs.verify(spec, "def f(x):\n    return 10**400\n")
    assert (v.passed, v.reason) == (False, reasons.WRONG_ANSWER)
    assert len(v.detail) < 300


def test_a_program_too_large_to_run_is_a_verdict(vs):
    program = "def f(x):\n    return x\n" + "#" * (17 << 20)
    v = vs.verify(
        {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [1], "expected": 1}]}, program
    )
    assert (v.passed, v.reason) == (False, reasons.OUTPUT_LIMIT)
