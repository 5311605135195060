"""The sample stage's configuration (see `config/base.py`); light, so the CLI imports it
without the sampling engines."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import at_least
from distillery.config.groups import DEFAULT_MODEL, BackendChoice, Decoding, PromptScope


@dataclass(frozen=True)
class SampleConfig(PromptScope, Decoding, BackendChoice):
    """Sample n completions per prompt into the warehouse; rerun the same command to resume."""

    model: str = DEFAULT_MODEL
    """Alias, model directory, hub id or registered name."""
    n: int = 16
    """Completions per prompt (the n of pass@k)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.n, 1, "n")
