"""Verifier specs: the JSON each prompt carries to say how its completions are judged.

Checked when prompts are loaded, so a bad spec is an error before any sampling starts.
The format is documented in README.md ("Verifier specs"); `validate_spec` is its one
definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CODE_TESTS = "code_tests"
JSON_SCHEMA = "json_schema"
ANSWER = "answer"
REGEX = "regex"
STYLE = "style"
ALL_OF = "all_of"
ANY_OF = "any_of"
JUDGE = "judge"

ANSWER_MATCHES = ("exact", "numeric", "math")


class SpecError(ValueError):
    """A verifier spec that cannot be used; the message names the field to fix."""


def _require(spec: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in spec:
        raise SpecError(f"{where}: missing field {key!r}")
    value = spec[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise SpecError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(spec: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> None:
    if key in spec and spec[key] is not None:
        _require(spec, key, types, where)


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _code_tests(spec: dict[str, Any], where: str) -> None:
    _require(spec, "entry_point", str, where)
    if ("cases" in spec) == ("test" in spec):
        raise SpecError(f"{where}: give exactly one of 'cases' (list) or 'test' (check code)")
    if "test" in spec:
        _require(spec, "test", str, where)
    else:
        cases = _require(spec, "cases", list, where)
        if not cases:
            raise SpecError(f"{where}: 'cases' is empty")
        for i, case in enumerate(cases):
            if not isinstance(case, dict) or not isinstance(case.get("args"), list):
                raise SpecError(f"{where}: cases[{i}] needs an 'args' list")
            if ("expected" in case) == ("raises" in case):
                raise SpecError(f"{where}: cases[{i}] needs exactly one of 'expected' or 'raises'")
    _optional(spec, "prefix", str, where)


def _json_schema(spec: dict[str, Any], where: str) -> None:
    _require(spec, "schema", dict, where)
    _optional(spec, "expected", dict, where)
    _optional(spec, "strict", bool, where)


def _answer(spec: dict[str, Any], where: str) -> None:
    _require(spec, "expected", (str, int, float), where)
    match = spec.get("match", "exact")
    if match not in ANSWER_MATCHES:
        raise SpecError(f"{where}: 'match' must be one of {', '.join(ANSWER_MATCHES)}")
    _optional(spec, "strict", bool, where)
    _optional(spec, "tolerance", (int, float), where)


def _regex(spec: dict[str, Any], where: str) -> None:
    import re

    pattern = _require(spec, "pattern", str, where)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"{where}: 'pattern' is not a valid regex ({exc})") from None
    _optional(spec, "expected", str, where)


def _style(spec: dict[str, Any], where: str) -> None:
    for key in ("sentences", "min_words", "max_words"):
        _optional(spec, key, int, where)
    _optional(spec, "no_emoji", bool, where)
    _optional(spec, "forbidden", list, where)
    if not any(k in spec for k in ("sentences", "min_words", "max_words", "no_emoji", "forbidden")):
        raise SpecError(f"{where}: a style spec needs at least one rule")


def _composite(spec: dict[str, Any], where: str) -> None:
    children = _require(spec, "verifiers", list, where)
    if not children:
        raise SpecError(f"{where}: 'verifiers' is empty")
    for i, child in enumerate(children):
        validate_spec(child, f"{where}.verifiers[{i}]")


def _judge(spec: dict[str, Any], where: str) -> None:
    _require(spec, "rubric", str, where)
    _optional(spec, "threshold", (int, float), where)


_CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    CODE_TESTS: _code_tests,
    JSON_SCHEMA: _json_schema,
    ANSWER: _answer,
    REGEX: _regex,
    STYLE: _style,
    ALL_OF: _composite,
    ANY_OF: _composite,
    JUDGE: _judge,
}

VERIFIER_KINDS: tuple[str, ...] = tuple(_CHECKS)


def validate_spec(spec: Any, where: str = "verifier") -> dict[str, Any]:
    """Return `spec` if usable, else raise SpecError with a one-line reason."""
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: a verifier spec is a JSON object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _CHECKS:
        raise SpecError(
            f"{where}: unknown verifier kind {kind!r}; use one of {', '.join(VERIFIER_KINDS)}"
        )
    _CHECKS[kind](spec, where)
    return spec
