import pytest

from filters import reasons
from filters.registry import Verifiers
from filters.verifier_code import values_equal

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
