"""The promotion gate's configuration and the promote stage's (see `config/base.py`);
light, so the CLI imports them without the statistics."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import Split, StageConfig, check
from distillery.config.groups import Decoding


@dataclass(frozen=True)
class GateConfig(StageConfig):
    """When a trained model may replace its parent (see `evals/gate.py`)."""

    min_gain: float = 0.0
    """Promote only if the lower bound of the paired delta pass@1 exceeds this (negative: not
    worse by more than this)."""
    max_family_drop: float = 0.0
    """Refuse if a family's delta pass@1 is significantly below minus this."""
    confidence: float = 0.95
    """Confidence of the one-sided bound and of the two-sided intervals."""
    gate_bootstrap: int = 2000
    """Resamples of the gate's paired bootstrap."""
    gate_seed: int = 0
    """Seed of the gate's paired bootstrap."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(-1 <= self.min_gain <= 1, f"--min-gain must be in [-1, 1] (got {self.min_gain})")
        check(
            0 <= self.max_family_drop <= 1,
            f"--max-family-drop must be in [0, 1] (got {self.max_family_drop})",
        )
        check(
            0.5 < self.confidence < 1, f"--confidence must be in (0.5, 1) (got {self.confidence})"
        )
        check(
            self.gate_bootstrap >= 100,
            f"--gate-bootstrap must be at least 100 resamples (got {self.gate_bootstrap})",
        )


@dataclass(frozen=True)
class PromoteConfig(GateConfig, Decoding):
    """The promotion gate on held-out evals; the decision and its numbers go to `promotions`."""

    model: str = ""
    """The trained model (name or id)."""
    parent: str | None = None
    """Compare with this model (default: its parent)."""
    suite: str = "seeds"
    """The suite both were evaluated on."""
    split: Split = "test"
    """The split both were evaluated on."""
    n: int = 16
    """Draws per prompt of both evals."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.model), "--model is required: the trained model (name or id)")
