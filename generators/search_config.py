"""The search stage's configuration (see `config/base.py`): the search policy the engine
runs (`generators/search.py`) and what the `distillery search` command adds to it. Light,
so the CLI imports it without the engines."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import ConfigError, StageConfig, at_least, check
from distillery.config.groups import DEFAULT_MODEL, BackendChoice, Decoding, PromptScope

PROCEDURES = ("sample", "prompted", "retry")
DEFAULT_SHOTS = 3


@dataclass(frozen=True)
class SearchPolicy(StageConfig):
    """How the adaptive search spends its budget. Defaults: 4 draws a wave per procedure
    and 2 targets per prompt, so a prompt p0 solves half the time closes after one wave; a
    budget of 24 completions lets a prompt that passes 1 time in 20 be found with about
    70 % chance, at 6x the cost of a solved one."""

    procedures: tuple[str, ...] = PROCEDURES
    """Where training targets come from: any of sample, prompted, retry (comma-separated)."""
    wave: int = 4
    """Draws per procedure per wave."""
    budget: int = 24
    """At most this many completions per prompt."""
    targets: int = 2
    """A prompt closes once it has this many distinct passing answers."""
    retries: int = 1
    """Feedback turns per failed draw (retry)."""
    shots: int = DEFAULT_SHOTS
    """Worked exemplars per family (prompted)."""
    retry_draws: int = 1
    """Failed bare draws per prompt and wave that get follow-ups (retry). Retries are the
    dearest completions (the failed answer and the feedback are prefilled anew for each)
    and found the fewest targets on the seed suite, so by default only the first failure
    of a wave is followed up."""

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [p for p in self.procedures if p not in PROCEDURES]
        if bad or not self.procedures:
            raise ConfigError(
                f"--procedures takes any of {', '.join(PROCEDURES)} "
                f"(got {','.join(self.procedures)})"
            )
        check(
            "retry" not in self.procedures or "sample" in self.procedures,
            "--procedures retry follows up bare draws: add sample to --procedures",
        )
        for name in ("wave", "budget", "targets", "retry_draws"):
            at_least(getattr(self, name), 1, name)
        at_least(self.retries, 0, "retries")
        at_least(self.shots, 0, "shots")


@dataclass(frozen=True)
class SearchConfig(SearchPolicy, PromptScope, Decoding, BackendChoice):
    """Find verified training targets with inference-time search; rerun to resume."""

    model: str = DEFAULT_MODEL
    """The model to search with."""
    context_file: str | None = None
    """JSON {family: {"system": str, "shots": [[user, answer], ...]}} for prompted."""
    workers: int | None = None
    """Verifier workers (default 2 x cores)."""
    max_new_tokens: int = 160
    """Longest completion, in tokens (room for a worked answer before the final one)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.workers, 1, "workers")
