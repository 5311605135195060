"""From per-prompt results to the figures of an evaluation: overall, per family, with costs.

Plain sampling: each prompt has n verified draws of which c passed; pass@k is the mean of
the unbiased per-prompt estimates and its interval a bootstrap over prompts. The cost of
a query that draws k samples is k times the mean per-draw tokens and seconds.

A strategy: each prompt has one outcome (passed or not) and what it spent; its success
rate is the mean, with the same bootstrap, and its cost is what it actually spent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from distillery.warehouse.passk import bootstrap_interval, pass_at_k


@dataclass(frozen=True)
class PromptDraws:
    prompt_id: str
    family: str
    n: int
    c: int
    tokens: int  # over its n draws
    seconds: float  # sampling share plus verification, over its n draws


@dataclass(frozen=True)
class PromptOutcome:
    prompt_id: str
    family: str
    passed: bool
    samples: int
    tokens: int
    seconds: float


@dataclass(frozen=True)
class Figures:
    k: int
    prompts: int
    pass_at_1: float
    pass_at_k: float
    ci_low: float
    ci_high: float
    samples_per_query: float
    tokens_per_query: float
    seconds_per_query: float
    tokens: int
    seconds: float
    per_family: dict[str, dict[str, float]] = field(default_factory=dict)


def _family_figures(
    families: Sequence[str], p1: Sequence[float], pk: Sequence[float], reps: int, seed: int
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, fam in enumerate(families):
        groups[fam].append(i)
    out = {}
    for fam, idx in sorted(groups.items()):
        values = [pk[i] for i in idx]
        lo, hi = bootstrap_interval(values, reps, seed)
        out[fam] = {
            "prompts": len(idx),
            "pass_at_1": sum(p1[i] for i in idx) / len(idx),
            "pass_at_k": sum(values) / len(idx),
            "ci_low": lo,
            "ci_high": hi,
        }
    return out


def sampling_figures(
    draws: Sequence[PromptDraws], k: int, reps: int = 1000, seed: int = 0
) -> Figures:
    if not draws:
        raise ValueError("no prompts to evaluate")
    p1 = [pass_at_k(d.n, d.c, 1) for d in draws]
    pk = [pass_at_k(d.n, d.c, k) for d in draws]
    lo, hi = bootstrap_interval(pk, reps, seed)
    total_n = sum(d.n for d in draws)
    tokens = sum(d.tokens for d in draws)
    seconds = sum(d.seconds for d in draws)
    return Figures(
        k=k,
        prompts=len(draws),
        pass_at_1=sum(p1) / len(draws),
        pass_at_k=sum(pk) / len(draws),
        ci_low=lo,
        ci_high=hi,
        samples_per_query=float(k),
        tokens_per_query=k * tokens / total_n,
        seconds_per_query=k * seconds / total_n,
        tokens=tokens,
        seconds=seconds,
        per_family=_family_figures([d.family for d in draws], p1, pk, reps, seed),
    )


def strategy_figures(
    outcomes: Sequence[PromptOutcome], budget: int, reps: int = 1000, seed: int = 0
) -> Figures:
    if not outcomes:
        raise ValueError("no prompts to evaluate")
    wins = [1.0 if o.passed else 0.0 for o in outcomes]
    lo, hi = bootstrap_interval(wins, reps, seed)
    rate = sum(wins) / len(wins)
    q = len(outcomes)
    tokens = sum(o.tokens for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    return Figures(
        k=budget,
        prompts=q,
        pass_at_1=rate,
        pass_at_k=rate,
        ci_low=lo,
        ci_high=hi,
        samples_per_query=sum(o.samples for o in outcomes) / q,
        tokens_per_query=tokens / q,
        seconds_per_query=seconds / q,
        tokens=tokens,
        seconds=seconds,
        per_family=_family_figures([o.family for o in outcomes], wins, wins, reps, seed),
    )
