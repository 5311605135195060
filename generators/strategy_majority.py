"""Majority vote (self-consistency): draw N, return the most common final answer.

For answer-type prompts only (numbers, dates, exact strings): `key(prompt_id, text)`
extracts the comparable answer, or None when the completion has none. The verifier does
not choose here; it only judges the answer the vote picked. Ties go to the answer seen
first, so a run is repeatable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from distillery.generators.base import Outcome, StrategyContext

AnswerKey = Callable[[str, str], str | None]


@dataclass(frozen=True)
class MajorityVote:
    key: AnswerKey
    budget: int = 8
    name: str = "majority"

    def run(
        self, ctx: StrategyContext, prompts: Sequence[tuple[str, str, tuple[tuple[str, str], ...]]]
    ) -> list[Outcome]:
        draws = ctx.draws([pid for pid, _, _ in prompts], self.budget)
        out = []
        for pid, family, _ in prompts:
            attempts = draws[pid]
            keys = [self.key(pid, a.text) for a in attempts]
            votes = Counter(k for k in keys if k is not None)
            chosen = attempts[0]
            if votes:
                top = max(votes.values())
                winner = next(k for k in keys if k is not None and votes[k] == top)
                chosen = attempts[keys.index(winner)]
            out.append(Outcome.of(pid, family, attempts, chosen))
        return out
