"""`all_of` / `any_of`: combine verifier specs; the version covers the children's versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"
Dispatch = Callable[[dict[str, Any], str], Verdict]


class AllOfVerifier:
    kind = "all_of"
    version = VERSION

    def __init__(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        scores = []
        for child in spec["verifiers"]:
            v = self._dispatch(child, text)
            if not v.passed:
                return Verdict(False, v.score, v.reason, f"{child['kind']}: {v.detail}"[:2000])
            scores.append(1.0 if v.score is None else v.score)
        return Verdict.ok(score=min(scores))


class AnyOfVerifier:
    kind = "any_of"
    version = VERSION

    def __init__(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        failures: list[Verdict] = []
        for child in spec["verifiers"]:
            v = self._dispatch(child, text)
            if v.passed:
                return v
            failures.append(v)
        # A sandbox fault (or a verifier error) among the children means we do not know:
        # say so, do not fail.
        fault = next((f for f in failures if f.sandbox_fault), None) or next(
            (f for f in failures if f.reason == reasons.VERIFIER_ERROR), None
        )
        first = fault or failures[0]
        best = max((f.score or 0.0) for f in failures)
        return Verdict(
            False,
            best if fault is None else None,
            first.reason if first.reason != reasons.OK else reasons.WRONG_ANSWER,
            first.detail,
        )
