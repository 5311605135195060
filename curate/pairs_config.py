"""The pairs stage's settings: how verified samples become chosen/rejected pairs for DPO.

Kept apart from `pairs.py` (which reads the warehouse) so the CLI and the flows can
declare their options without importing the warehouse's Arrow and DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import Split, StageConfig, at_least, check

Pairing = Literal["pass-fail", "best-worst", "all"]


@dataclass(frozen=True)
class PairConfig(StageConfig):
    """How verified samples become chosen/rejected pairs."""

    pairing: Pairing = "pass-fail"
    """pass-fail: a passing sample over a failing one; best-worst: the highest score over
    the lowest; all: every passing x failing combination."""
    pairs_per_prompt: int = 4
    """At most this many pairs per prompt."""
    min_margin: float = 0.0
    """Pair only where chosen's score exceeds rejected's by at least this."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.pairs_per_prompt, 1, "pairs_per_prompt")
        check(self.min_margin >= 0, f"--min-margin must be >= 0 (got {self.min_margin})")


@dataclass(frozen=True)
class PairsConfig(PairConfig):
    """Build chosen/rejected pairs from verified samples into the `pairs` table."""

    suite: str | None = None
    """Only samples of this suite."""
    model: str | None = None
    """Only samples of this model (name or id)."""
    split: Split | None = "train"
    """Only prompts of this split (none: both)."""
