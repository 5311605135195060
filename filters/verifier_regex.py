"""`regex`: the whole completion must match a format (an ISO date, say), and may have to
equal an expected value."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class RegexVerifier:
    kind = "regex"
    version = VERSION

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        core = text.strip()
        if not _compiled(spec["pattern"]).fullmatch(core):
            return Verdict.fail(
                reasons.FORMAT_MISMATCH, f"does not match {spec['pattern']!r}: {core[:80]!r}"
            )
        expected = spec.get("expected")
        if expected is not None and core != expected:
            return Verdict.fail(reasons.WRONG_ANSWER, f"got {core!r}, expected {expected!r}")
        return Verdict.ok()
