"""The bake's configuration: the stages' shared groups composed into one (see
`config/base.py`). Light: no Prefect, so the CLI imports it at once.

Each group is declared once where it belongs (decoding, backend and sharding in
`config/groups.py`, the search policy beside the search, TRL's arguments beside the
trainers, the gate beside evaluation); the bake adds what only it has (rounds, the
method, the eval's n). `bake_flow` projects it onto each stage's config, names unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import at_least, check
from distillery.config.groups import DEFAULT_MODEL, BackendChoice, Decoding, Sharding
from distillery.evals.gate_config import GateConfig
from distillery.generators.search_config import SearchPolicy
from distillery.trainers.train_config import TrainArgs

# A search yields tens of targets per family, not thousands: one epoch is a handful of
# optimizer steps, which moved nothing measurable. Three epochs at RSFT's 1e-4 moved
# held-out pass@1 of SmolLM2-135M significantly (benchmarks/RESULTS.md, "Effect").
BAKE_EPOCHS = 3.0


@dataclass(frozen=True)
class BakeConfig(SearchPolicy, Decoding, BackendChoice, Sharding, GateConfig, TrainArgs):
    """The whole loop for R rounds: search (or sample), verify, pair, train, evaluate,
    gate, report."""

    name: str = "baked"
    """Round models are named NAME-r1, NAME-r2, ..."""
    model: str = DEFAULT_MODEL
    """The base model p0."""
    suite: str = "seeds"
    """The suite: its train split is searched, its test split evaluates."""
    rounds: int = 1
    """Rounds of search, train, gate (a refused round ends the bake)."""
    method: Literal["rsft", "dpo"] = "rsft"
    """rsft (TRL SFTTrainer on the targets) or dpo (TRL DPOTrainer on stored pairs)."""
    search: Literal["adaptive", "plain"] = "adaptive"
    """adaptive: the procedures until each prompt has its targets; plain: n bare draws per
    prompt (`distillery sample`)."""
    n: int = 8
    """plain search: completions per train prompt."""
    limit: int | None = None
    """At most this many train prompts."""
    per_family: int | None = None
    """At most this many train prompts per family."""
    context_file: str | None = None
    """JSON {family: {"system": str, "shots": [[user, answer], ...]}} for prompted."""
    eval_n: int = 8
    """Held-out draws per prompt (p0 and each round's model alike)."""
    eval_per_family: int | None = None
    """At most this many test prompts per family."""
    learning_rate: float | None = None  # type: ignore[assignment]
    """Peak learning rate (default: RSFT's 1e-4, DPO's 5e-6)."""
    num_train_epochs: float = BAKE_EPOCHS
    """Training epochs per round."""
    beta: float = 0.1
    """dpo: KL leash to the base model."""
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    """dpo: the loss."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.rounds, 1, "rounds")
        at_least(self.n, 1, "n")
        at_least(self.eval_n, 1, "eval_n")
        at_least(self.limit, 1, "limit")
        at_least(self.per_family, 1, "per_family")
        at_least(self.eval_per_family, 1, "eval_per_family")
        check(self.beta > 0, f"--beta must be > 0 (got {self.beta})")
