"""The verifier protocol: a prompt's spec and a completion in, a Verdict out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from filters import reasons


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float | None
    reason: str
    detail: str = ""
    seconds: float = 0.0

    @classmethod
    def ok(cls, score: float = 1.0, detail: str = "") -> Verdict:
        return cls(True, score, reasons.OK, detail)

    @classmethod
    def fail(cls, reason: str, detail: str = "", score: float | None = 0.0) -> Verdict:
        if reason == reasons.OK:
            raise ValueError("a failing verdict needs a failure reason")
        return cls(False, score, reason, detail[:2000])

    @property
    def sandbox_fault(self) -> bool:
        return self.reason in reasons.SANDBOX_FAULTS


class Verifier(Protocol):
    kind: str
    version: str  # bump when verdicts for the same input could change

    def verify(self, spec: dict[str, Any], text: str) -> Verdict: ...
