"""`json_schema`: the first JSON object in the completion (or the whole text, when strict)
validated with `jsonschema`, plus expected values per key."""

from __future__ import annotations

import json
import re
import reprlib
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"
_DECODER = json.JSONDecoder()
# Where an object can start: `{`, JSON blanks, then a key or `}` (anything else fails at
# once, so only these are tried).
_OBJECT_START = re.compile(r'\{[ \t\n\r]*+["}]')
_FIRST_WINDOW = 256
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 4, 80, 80
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = 10


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def first_json_object(text: str) -> tuple[Any, bool]:
    """(value, found): the first `{…}` that parses, scanning left to right.

    Linear in the text: each start is parsed in a window that grows only as far as the
    parse gets (a failed parse used to cost its offset in the text, so 100k `{` were
    quadratic), and once the parses have read 8 times the text in all, the scan gives up
    (found False): only a crafted text gets there.
    """
    work_left = 8 * len(text) + 65536
    for m in _OBJECT_START.finditer(text):
        start, window = m.start(), _FIRST_WINDOW
        while True:
            chunk = text[start : start + window]
            whole = start + window >= len(text)
            try:
                value, _ = _DECODER.raw_decode(chunk)
                return value, True  # an object that closes inside the window closes in the text
            except json.JSONDecodeError as exc:
                # Failing before the window's end fails in the whole text too, except an
                # unterminated string (reported where it starts).
                cut = exc.pos >= len(chunk) - 16 or exc.msg.startswith("Unterminated string")
                work_left -= len(chunk) if cut else exc.pos + 1
                if whole or not cut:
                    break
            except (RecursionError, ValueError):
                # Nested past the recursion limit, or an int past int()'s digit limit: the
                # same in the whole text.
                work_left -= len(chunk)
                break
            if work_left < 0:
                return None, False
            window *= 4
        if work_left < 0:
            return None, False
    return None, False


def short_repr(value: Any) -> str:
    """A bounded repr, safe for deep or huge values."""
    try:
        return _SHORT.repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"


def same_value(got: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return got.strip().casefold() == want.strip().casefold()
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, int | float) and isinstance(got, int | float):
        try:
            return abs(got - want) <= 1e-9 * max(1.0, abs(want))
        except OverflowError:  # an int past any float is not close to a finite number
            return False
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(
            same_value(g, w) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    return got == want


class JsonSchemaVerifier:
    kind = "json_schema"
    version = VERSION

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        if spec.get("strict"):
            try:
                value, found = json.loads(text.strip()), True
            except (ValueError, RecursionError) as exc:  # ValueError: an int too long
                return Verdict.fail(
                    reasons.INVALID_JSON, f"the completion is not JSON: {exc}"[:300]
                )
        else:
            value, found = first_json_object(text)
            if not found:
                return Verdict.fail(reasons.INVALID_JSON, "no JSON object in the completion")
        schema_json = json.dumps(spec["schema"], sort_keys=True)
        try:
            error = next(iter(_validator(schema_json).iter_errors(value)), None)
        except RecursionError:
            return Verdict.fail(reasons.SCHEMA_MISMATCH, "the value is nested too deeply")
        if error is not None:
            return Verdict.fail(reasons.SCHEMA_MISMATCH, error.message[:300])
        expected = spec.get("expected") or {}
        wrong = [
            k
            for k, v in expected.items()
            if not isinstance(value, dict) or not same_value(value.get(k), v)
        ]
        if wrong:
            k = wrong[0]
            got = value.get(k) if isinstance(value, dict) else None
            score = 1 - len(wrong) / len(expected)
            return Verdict.fail(
                reasons.WRONG_ANSWER,
                f"{k}: got {short_repr(got)}, expected {short_repr(expected[k])}"[:300],
                score,
            )
        return Verdict.ok()
