"""`json_schema`: the first JSON object in the completion (or the whole text, when strict)
validated with `jsonschema`, plus expected values per key."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from filters import reasons
from filters.base import Verdict

VERSION = "1"


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def first_json_object(text: str) -> tuple[Any, bool]:
    """(value, found): the first `{…}` that parses, scanning left to right."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value, True
        except (json.JSONDecodeError, RecursionError):
            start = text.find("{", start + 1)
    return None, False


def same_value(got: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return got.strip().casefold() == want.strip().casefold()
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, int | float) and isinstance(got, int | float):
        return abs(got - want) <= 1e-9 * max(1.0, abs(want))
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
            except (json.JSONDecodeError, RecursionError) as exc:
                return Verdict.fail(
                    reasons.INVALID_JSON, f"the completion is not JSON: {exc}"[:300]
                )
        else:
            value, found = first_json_object(text)
            if not found:
                return Verdict.fail(reasons.INVALID_JSON, "no JSON object in the completion")
        schema_json = json.dumps(spec["schema"], sort_keys=True)
        error = next(iter(_validator(schema_json).iter_errors(value)), None)
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
                reasons.WRONG_ANSWER, f"{k}: got {got!r}, expected {expected[k]!r}"[:300], score
            )
        return Verdict.ok()
