"""The verify stage's configuration (see `config/base.py`); light, so the CLI imports it
without the verifiers."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import Split, StageConfig, at_least


@dataclass(frozen=True)
class VerifyConfig(StageConfig):
    """Verify samples that have no verdict for the current verifier version."""

    suite: str | None = None
    """Only samples of this suite."""
    model: str | None = None
    """Only samples of this model (name or id)."""
    split: Split | None = None
    """Only samples of prompts in this split (default: both)."""
    workers: int | None = None
    """Programs in flight (default 2 x cores)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.workers, 1, "workers")
