"""The select stage's settings: which verified samples become RSFT's training targets.

Kept apart from `selection.py` (which reads the warehouse) so the CLI and the flows can
declare their options without importing the warehouse's Arrow and DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import Split, StageConfig, at_least
from distillery.config.groups import DEFAULT_MODEL


@dataclass(frozen=True)
class SelectionConfig(StageConfig):
    """Which verified samples become RSFT's training targets."""

    mode: Literal["all", "best"] = "all"
    """all: every distinct passing sample (capped); best: the top-scoring one per prompt."""
    samples_per_prompt: int = 4
    """At most this many targets per prompt."""
    samples_per_family: int | None = None
    """At most this many targets per family (taken round-robin over its prompts)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.samples_per_prompt, 1, "samples_per_prompt")
        at_least(self.samples_per_family, 1, "samples_per_family")


@dataclass(frozen=True)
class SelectConfig(SelectionConfig):
    """Select RSFT's training targets from verified samples into the `selections` table."""

    suite: str | None = None
    """Only samples of this suite (none: every suite)."""
    model: str = DEFAULT_MODEL
    """Whose samples (name or id); `train rsft --samples-of` reads this model's selection."""
    split: Split | None = "train"
    """Only prompts of this split (none: both)."""
