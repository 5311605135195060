"""The inference-time strategies behind one factory, by name."""

from __future__ import annotations

from distillery.generators.base import SamplingError, Strategy
from distillery.generators.strategy_best_of_n import BestOfN
from distillery.generators.strategy_majority import AnswerKey, MajorityVote
from distillery.generators.strategy_retry import ValidateAndRetry

STRATEGIES = ("best_of_n", "retry", "majority")


def make_strategy(name: str, budget: int, key: AnswerKey | None = None) -> Strategy:
    if budget < 1:
        raise SamplingError(f"a strategy's budget must be at least 1 (got {budget})")
    if name == "best_of_n":
        return BestOfN(budget)
    if name == "retry":
        return ValidateAndRetry(budget)
    if name == "majority":
        if key is None:
            raise SamplingError("majority vote needs an answer key")
        return MajorityVote(key, budget)
    raise SamplingError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
