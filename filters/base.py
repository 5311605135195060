"""The verifier protocol: a prompt's spec and a completion in, a Verdict out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from distillery.filters import reasons

# Longest completion any verifier looks at (about 250k tokens, far past any sampling
# limit): a longer one fails with `output_limit` before any work. Every text verifier is
# linear in the text or runs under the time budget (filters/bounded.py), so this also
# bounds the work a verdict can cost.
MAX_TEXT_CHARS = 1_000_000
# Longest `detail` a verdict keeps; what is stored is always valid UTF-8.
MAX_DETAIL_CHARS = 2000


def clean_text(text: str, limit: int | None = None) -> str:
    """`text` cut to `limit` characters, as valid UTF-8: lone surrogates become U+FFFD.

    Cheap when there is nothing to do (ASCII or encodable text is returned as is).
    """
    if limit is not None and len(text) > limit:
        text = text[:limit]
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16 a surrogate *pair* still becomes its character; a lone one, U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float | None
    reason: str
    detail: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        # Whatever built it, a verdict's detail can be stored: bounded and valid UTF-8.
        detail = self.detail if isinstance(self.detail, str) else str(self.detail)
        cleaned = clean_text(detail, MAX_DETAIL_CHARS)
        if cleaned is not self.detail:
            object.__setattr__(self, "detail", cleaned)

    @classmethod
    def ok(cls, score: float = 1.0, detail: str = "") -> Verdict:
        return cls(True, score, reasons.OK, detail)

    @classmethod
    def fail(cls, reason: str, detail: str = "", score: float | None = 0.0) -> Verdict:
        if reason == reasons.OK:
            raise ValueError("a failing verdict needs a failure reason")
        return cls(False, score, reason, detail)

    @property
    def sandbox_fault(self) -> bool:
        return self.reason in reasons.SANDBOX_FAULTS


class Verifier(Protocol):
    kind: str
    version: str  # bump when verdicts for the same input could change

    def verify(self, spec: dict[str, Any], text: str) -> Verdict: ...
