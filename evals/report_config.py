"""The report stage's configuration (see `config/base.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import Split, StageConfig


@dataclass(frozen=True)
class ReportConfig(StageConfig):
    """Markdown report with PNG plots: pass@k curves, families, strategies, amortization."""

    out: str = "report"
    """Directory for report.md and its plots."""
    base: str | None = None
    """The base model p0 (name or id)."""
    model: str | None = None
    """The trained model (default: the promoted one)."""
    suite: str = "seeds"
    """The suite both were evaluated on."""
    split: Split = "test"
    """The split both were evaluated on."""
