"""One factory for every verifier: a spec's `kind` → the verifier, and its version string."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from distillery.filters import (
    bounded,
    reasons,
    verifier_answer,
    verifier_code,
    verifier_compose,
    verifier_json,
    verifier_judge,
    verifier_regex,
    verifier_style,
)
from distillery.filters import spec as specs
from distillery.filters.base import MAX_TEXT_CHARS, Verdict, Verifier
from distillery.filters.verifier_answer import AnswerVerifier
from distillery.filters.verifier_code import CodeTestsVerifier
from distillery.filters.verifier_compose import AllOfVerifier, AnyOfVerifier
from distillery.filters.verifier_json import JsonSchemaVerifier
from distillery.filters.verifier_judge import JudgeVerifier
from distillery.filters.verifier_regex import RegexVerifier
from distillery.filters.verifier_style import StyleVerifier

if TYPE_CHECKING:
    from distillery.filters.sandbox.child import Limits


class Verifiers:
    """All verifiers; the code sandbox starts on the first code spec, not before."""

    def __init__(
        self,
        workers: int | None = None,
        packages: tuple[str, ...] = (),
        limits: Limits | None = None,
    ) -> None:
        self._workers = workers
        self._packages = packages  # importable by programs besides the standard library
        self._limits = limits  # each program's wall clock, CPU, memory...; None: the defaults
        self._sandbox: Any = None
        self._lock = threading.Lock()
        self._by_kind: dict[str, Verifier] = {
            specs.ANSWER: AnswerVerifier(),
            specs.REGEX: RegexVerifier(),
            specs.JSON_SCHEMA: JsonSchemaVerifier(),
            specs.STYLE: StyleVerifier(),
            specs.ALL_OF: AllOfVerifier(self.verify),
            specs.ANY_OF: AnyOfVerifier(self.verify),
            specs.JUDGE: JudgeVerifier(),
        }

    @property
    def sandbox(self) -> Any:
        with self._lock:
            if self._sandbox is None:
                from distillery.filters.sandbox.runner import Sandbox

                self._sandbox = Sandbox(
                    workers=self._workers, limits=self._limits, packages=self._packages
                )
            return self._sandbox

    def _verifier(self, kind: str) -> Verifier:
        if kind == specs.CODE_TESTS and kind not in self._by_kind:
            sandbox = self.sandbox  # the zygote starts on the first code spec, once
            with self._lock:
                self._by_kind.setdefault(kind, CodeTestsVerifier(sandbox))
        return self._by_kind[kind]

    @staticmethod
    def version(spec: dict[str, Any]) -> str:
        """The version a verdict for `spec` is stored under: composites include children's."""
        kind = spec["kind"]
        own = _VERSIONS[kind]
        if kind in (specs.ALL_OF, specs.ANY_OF):
            return (
                own
                + "("
                + ",".join(f"{c['kind']}:{Verifiers.version(c)}" for c in spec["verifiers"])
                + ")"
            )
        return own

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        """`spec`'s verdict on `text`. Never raises (an exception is `verifier_error`).

        Text verifiers share one time budget per verdict (filters/bounded.py): those that
        can be super-linear on hostile text run in a worker process killed at the budget
        (`timeout`); the others are linear and run here. A code sandbox or a judge has its
        own limits, and its time is not charged to the budget.
        """
        with bounded.deadline() as remaining:
            try:
                if len(text) > MAX_TEXT_CHARS:
                    return Verdict.fail(
                        reasons.OUTPUT_LIMIT,
                        f"completion of {len(text)} characters, over the verifiers' "
                        f"limit of {MAX_TEXT_CHARS}",
                    )
                kind = spec["kind"]
                if kind in (specs.CODE_TESTS, specs.JUDGE):
                    with bounded.paused():
                        return self._verifier(kind).verify(spec, text)
                if bounded.needs_worker(spec):
                    return bounded.run(spec, text, remaining())
                if remaining() <= 0:
                    return bounded.timed_out(bounded.budget_s())
                return self._verifier(kind).verify(spec, text)
            except UnicodeError as exc:
                if not isinstance(spec, dict) or spec.get("kind") != specs.CODE_TESTS:
                    return bounded.error_verdict(exc)
                # Lone surrogates: no program can be made of the text.
                return Verdict.fail(reasons.SYNTAX_ERROR, f"undecodable text: {exc}"[:300])
            except Exception as exc:
                return bounded.error_verdict(exc)

    def close(self) -> None:
        bounded.shutdown()
        if self._sandbox is not None:
            self._sandbox.close()


_VERSIONS = {
    specs.ANSWER: verifier_answer.VERSION,
    specs.REGEX: verifier_regex.VERSION,
    specs.JSON_SCHEMA: verifier_json.VERSION,
    specs.STYLE: verifier_style.VERSION,
    specs.CODE_TESTS: verifier_code.VERSION,
    specs.ALL_OF: verifier_compose.VERSION,
    specs.ANY_OF: verifier_compose.VERSION,
    specs.JUDGE: verifier_judge.VERSION,
}
