"""Best-of-N with the verifier: draw N, run the checks, return a passing one if any.

The seeds' "sample 8, run the tests, return the max-pass solution". Its success rate is
the empirical pass@N of the first N draws; it costs N samples and N verifications per
query, every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distillery.generators.base import Outcome, StrategyContext


@dataclass(frozen=True)
class BestOfN:
    budget: int = 8
    name: str = "best_of_n"

    def run(
        self, ctx: StrategyContext, prompts: Sequence[tuple[str, str, tuple[tuple[str, str], ...]]]
    ) -> list[Outcome]:
        draws = ctx.draws([pid for pid, _, _ in prompts], self.budget)
        out = []
        for pid, family, _ in prompts:
            attempts = draws[pid]
            chosen = next((a for a in attempts if a.passed), attempts[0])
            out.append(Outcome.of(pid, family, attempts, chosen))
        return out
