"""How far an evaluation has got, as (done, total) draws, for a live progress bar.

An eval draws n completions per prompt, then runs each strategy asked for. The total is
what it looks at per prompt: the n draws plus each strategy's budget (its retries for
validate-and-retry). The n draws count as they are made, and those the warehouse already
holds count as soon as the plan finds them; a strategy mostly reuses those draws or adds
a few retries, so it counts whole when it ends. The count never goes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from distillery.evals.eval_config import EvalConfig

CountFn = Callable[[int, int], None]  # (done, total)


@dataclass
class EvalProgress:
    report: CountFn | None
    draws: int  # prompts x n
    strategies: list[int]  # prompts x each strategy's budget, in the order they run
    done: int = 0
    _drawing: bool = field(default=True, repr=False)  # still in the n-draw phase

    @classmethod
    def of(cls, job: EvalConfig, prompts: int, report: CountFn | None) -> EvalProgress:
        budgets = [job.retries if s == "retry" else job.budget for s in job.strategies]
        return cls(report, prompts * job.n, [prompts * b for b in budgets])

    @property
    def total(self) -> int:
        return self.draws + sum(self.strategies)

    def planned(self, missing: int) -> None:
        """The plan of the n draws: what the warehouse holds is done already."""
        if self._drawing:
            self._advance_to(self.draws - missing)

    def drawn(self, samples: int) -> None:
        if self._drawing:
            self._advance_to(min(self.done + samples, self.draws))

    def draws_done(self) -> None:
        self._drawing = False  # later draws are the strategies' own, counted as they end
        self._advance_to(self.draws)

    def strategy_done(self, index: int) -> None:
        self._advance_to(self.draws + sum(self.strategies[: index + 1]))

    def _advance_to(self, done: int) -> None:
        self.done = max(self.done, done)
        if self.report is not None:
            self.report(self.done, self.total)
