"""The eval stage's configuration (see `config/base.py`); light, so the CLI imports it
without the engines."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import ConfigError, Split, at_least, check
from distillery.config.groups import DEFAULT_MODEL, BackendChoice, Decoding, PromptScope
from distillery.generators.strategies import STRATEGIES


@dataclass(frozen=True)
class EvalConfig(PromptScope, Decoding, BackendChoice):
    """pass@k (unbiased, 95% bootstrap CI) per family, with cost; stored in `evals`."""

    model: str = DEFAULT_MODEL
    """Alias, directory or registered name."""
    n: int = 16
    """Draws per prompt (the n of pass@k)."""
    k: tuple[int, ...] = (1, 4, 16)
    """pass@k for these k (comma-separated, each <= n)."""
    strategies: tuple[str, ...] = ()
    """Also run these inference-time strategies: any of best_of_n, retry, majority."""
    budget: int = 8
    """N of best-of-N and of the majority vote."""
    retries: int = 2
    """R of validate-and-retry."""
    workers: int | None = None
    """Verifier workers (default 2 x cores)."""
    bootstrap: int = 1000
    """Bootstrap resamples of each confidence interval."""
    split: Split | None = "test"
    """train | test (held out)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.n, 1, "n")
        check(self.split is not None, "--split must be train or test")
        check(bool(self.k), "--k needs at least one value, such as 1,4,16")
        for k in self.k:
            check(
                1 <= k <= self.n,
                f"pass@{k} needs k between 1 and --n {self.n}; raise --n or pass --k with "
                f"values from 1 to {self.n}",
            )
        for name in self.strategies:
            if name not in STRATEGIES:
                raise ConfigError(f"unknown strategy {name!r}; use any of {', '.join(STRATEGIES)}")
        at_least(self.budget, 1, "budget")
        at_least(self.retries, 1, "retries")
        at_least(self.workers, 1, "workers")
        check(self.bootstrap >= 100, "--bootstrap must be at least 100 resamples")
