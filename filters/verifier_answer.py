"""`answer`: exact, numeric or math-equivalent answers, optionally with nothing else around.

`strict` is the seeds' "respond with a number only": any text beside the answer fails
with `extra_text` even when the number in it is right.
"""

from __future__ import annotations

import math
import re
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
_WRAPPERS = " \t\r\n`*$"
_INT_DIGITS = 4300  # sys.int_info.default_max_str_digits


def parse_number(token: str) -> float | int | None:
    token = token.replace(",", "")
    # int() is quadratic in the digits; past CPython's default limit it raises anyway
    # (whatever PYTHONINTMAXSTRDIGITS says), and float() is linear.
    if len(token) <= _INT_DIGITS + 1:  # and a sign
        try:
            return int(token)
        except ValueError:
            pass
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_match(got: float | int, want: float | int, tolerance: float) -> bool:
    if isinstance(got, int) and isinstance(want, int):
        return got == want
    try:
        return math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance)
    except OverflowError:  # an int past any float is not close to a finite number
        return False


class AnswerVerifier:
    kind = "answer"
    version = VERSION

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        match = spec.get("match", "exact")
        strict = bool(spec.get("strict", False))
        expected = spec["expected"]
        if match == "numeric":
            return self._numeric(expected, text, strict, float(spec.get("tolerance", 1e-6)))
        if match == "math":
            return self._math(str(expected), text, strict)
        return self._exact(str(expected), text, strict)

    def _numeric(self, expected: Any, text: str, strict: bool, tol: float) -> Verdict:
        want = parse_number(str(expected))
        if want is None:
            return Verdict.fail(
                reasons.WRONG_ANSWER, f"expected value {expected!r} is not a number"
            )
        core = text.strip(_WRAPPERS).rstrip(".")
        found = _NUMBER.findall(text)
        if not found:
            return Verdict.fail(reasons.NO_ANSWER, "no number in the completion")
        if strict:
            if not _NUMBER.fullmatch(core):
                right = any(
                    numbers_match(n, want, tol) for n in map(parse_number, found) if n is not None
                )
                detail = "the right number, but with other text" if right else "not a number alone"
                return Verdict.fail(reasons.EXTRA_TEXT, detail, score=0.5 if right else 0.0)
            got = parse_number(core)
        else:
            got = parse_number(found[-1])  # the conclusion usually comes last
        if got is not None and numbers_match(got, want, tol):
            return Verdict.ok()
        return Verdict.fail(reasons.WRONG_ANSWER, f"got {got}, expected {want}")

    def _exact(self, expected: str, text: str, strict: bool) -> Verdict:
        core = text.strip(_WRAPPERS).rstrip(".")
        if core == expected.strip():
            return Verdict.ok()
        if strict:
            inside = re.search(rf"(?<!\w){re.escape(expected.strip())}(?!\w)", text) is not None
            if inside:
                return Verdict.fail(
                    reasons.EXTRA_TEXT, "the right answer, but with other text", 0.5
                )
            return Verdict.fail(reasons.WRONG_ANSWER, f"expected {expected!r}")
        if not core:
            return Verdict.fail(reasons.NO_ANSWER, "empty completion")
        last = core.splitlines()[-1].strip(_WRAPPERS).rstrip(".")
        if last == expected.strip() or re.search(
            rf"(?<!\w){re.escape(expected.strip())}(?!\w)", last
        ):
            return Verdict.ok()
        return Verdict.fail(reasons.WRONG_ANSWER, f"expected {expected!r} on the last line")

    def _math(self, expected: str, text: str, strict: bool) -> Verdict:
        from math_verify import parse, verify

        # Unbounded here (sympy can hold the GIL for minutes on a 35-character answer, and
        # math-verify's own timeouts are signals): the registry runs this in a worker
        # process that it kills when the time budget runs out (filters/bounded.py).
        gold = parse(expected, parsing_timeout=None)
        got = parse(text, parsing_timeout=None)
        if not got:
            return Verdict.fail(reasons.NO_ANSWER, "no mathematical answer found")
        if not verify(gold, got, timeout_seconds=None):
            return Verdict.fail(reasons.WRONG_ANSWER, f"got {got[-1]!s}, expected {expected}"[:300])
        if strict and len(text.strip(_WRAPPERS)) > max(3 * len(expected), len(expected) + 12):
            return Verdict.fail(reasons.EXTRA_TEXT, "the right answer, but with other text", 0.5)
        return Verdict.ok()
