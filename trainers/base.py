"""What a training stage needs of a launcher: the `Launcher` protocol and its `TrainResult`.

Light on purpose (no torch, transformers or TRL): the stage builds its launcher and reads
the warehouse before anything heavy is imported, so a job that cannot start says so at
once. What the TRL launchers share is in `trl_run.py`; their configs in `train_config.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class TrainResult:
    status: str  # completed | failed
    reason: str | None
    steps: int
    seconds: float
    tokens: int
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class Launcher(Protocol):
    """What a training stage calls: RSFT (`rsft_trainer`) and DPO (`dpo_trainer`) both."""

    kind: str

    def train(
        self,
        model: Any,
        tokenizer: Any,
        rows: list[dict[str, Any]],
        out_dir: str,
        progress: Callable[[int, int, float, float], None] | None = None,
    ) -> TrainResult: ...
