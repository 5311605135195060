"""Paired comparison of two evaluations over the same prompts: a gain, or noise?

Two models evaluated on the same held-out prompts give per-prompt figures a_i (before)
and b_i (after); for plain sampling a prompt's pass@1 is c/n, for a strategy 1 or 0.
Prompts differ far more in difficulty than two models do, so the comparison is paired:
the bootstrap resamples prompt indices with replacement and uses the same indices for
both models, which cancels the difficulty spread that two separate intervals would both
carry. The per-prompt spread of b_i − a_i includes each prompt's own draw noise, so the
interval counts that too.

Δ = mean(b) − mean(a). Its two-sided interval at `confidence` and its one-sided lower
bound at `confidence` are percentiles of the resampled Δ. Per family the resampling stays
within the family. Everything is seeded: the same evals and seed give the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from distillery.warehouse.passk import pass_at_k
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.store import Warehouse

# Resampled indices are drawn in chunks of at most this many, so a large eval does not
# hold a resamples × prompts matrix at once.
_CHUNK_CELLS = 2_000_000


class ComparisonError(ValueError):
    """Two evals that cannot be compared pairwise; says what to run."""


@dataclass(frozen=True)
class Outcomes:
    """One eval's per-prompt figures, by prompt id."""

    rates: dict[str, float]
    families: dict[str, str]


@dataclass(frozen=True)
class Delta:
    prompts: int
    before: float  # mean per-prompt figure of the first eval
    after: float
    delta: float  # after − before
    ci_low: float  # two-sided interval at the comparison's confidence
    ci_high: float
    lower_bound: float  # one-sided: Δ is above this at the comparison's confidence


@dataclass(frozen=True)
class Comparison:
    confidence: float
    resamples: int
    seed: int
    overall: Delta
    families: dict[str, Delta]


def read_evals(wh: Warehouse, where: str, params: Sequence[Any]) -> list[EvalRecord]:
    """`SELECT … FROM evals WHERE <where>` as records; `where` may end in ORDER BY/LIMIT."""
    cols = [f.name for f in fields(EvalRecord)]
    rows = wh.query(f"SELECT {', '.join(cols)} FROM evals WHERE {where}", params)
    out = []
    for row in rows:
        r = EvalRecord(*row)
        # Rows written before the per-prompt outcomes existed read NULL there.
        out.append(
            replace(
                r,
                prompt_ids=list(r.prompt_ids or []),
                prompt_families=list(r.prompt_families or []),
                passes=list(r.passes or []),
            )
        )
    return out


def outcomes(record: EvalRecord, k: int = 1) -> Outcomes:
    """Per-prompt pass@k (c of n draws) of a sampling eval, or 0/1 of a strategy's."""
    if not record.prompt_ids:
        raise ComparisonError(
            f"eval {record.eval_id} has no per-prompt outcomes (it was written before "
            "they were stored); rerun the same `distillery eval` command"
        )
    if record.strategy == "sample":
        rates = [pass_at_k(record.n, c, k) for c in record.passes]
    else:
        rates = [float(c) for c in record.passes]
    return Outcomes(
        dict(zip(record.prompt_ids, rates, strict=True)),
        dict(zip(record.prompt_ids, record.prompt_families, strict=True)),
    )


def _resampled_means(d: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    m = d.size
    step = max(1, _CHUNK_CELLS // m)
    means = np.empty(resamples)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        means[start:stop] = d[rng.integers(0, m, size=(stop - start, m))].mean(axis=1)
    return means


def _delta(
    a: np.ndarray, b: np.ndarray, resamples: int, rng: np.random.Generator, confidence: float
) -> Delta:
    d = b - a
    if np.all(d == d[0]):
        # Every prompt moved by the same amount (often: none did): nothing to resample.
        lo = hi = lower = float(d[0])
    else:
        means = _resampled_means(d, resamples, rng)
        tail = 100 * (1 - confidence)
        lo, hi, lower = (float(x) for x in np.percentile(means, [tail / 2, 100 - tail / 2, tail]))
    return Delta(
        prompts=int(d.size),
        before=float(a.mean()),
        after=float(b.mean()),
        delta=float(b.mean() - a.mean()),
        ci_low=lo,
        ci_high=hi,
        lower_bound=lower,
    )


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    families: Sequence[str],
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Δ of the means of aligned per-prompt figures, overall and per family."""
    a = np.asarray(before, dtype=float)
    b = np.asarray(after, dtype=float)
    if a.size == 0 or a.shape != b.shape or len(families) != a.size:
        raise ComparisonError(
            f"need the same non-zero number of per-prompt figures on both sides "
            f"(got {a.size}, {b.size} and {len(families)} families)"
        )
    if not 0.5 < confidence < 1:
        raise ComparisonError(f"confidence must be in (0.5, 1) (got {confidence})")
    if resamples < 100:
        raise ComparisonError(f"use at least 100 bootstrap resamples (got {resamples})")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, fam in enumerate(families):
        groups[fam].append(i)
    # One independent stream per figure, so a family's interval does not depend on
    # how many other families there are or how large they are.
    seeds = np.random.SeedSequence(seed).spawn(1 + len(groups))
    streams = [np.random.default_rng(s) for s in seeds]
    overall = _delta(a, b, resamples, streams[0], confidence)
    per_family = {
        fam: _delta(a[idx], b[idx], resamples, rng, confidence)
        for (fam, idx), rng in zip(sorted(groups.items()), streams[1:], strict=True)
    }
    return Comparison(confidence, resamples, seed, overall, per_family)


def compare(
    before: Outcomes,
    after: Outcomes,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    common_only: bool = False,
) -> Comparison:
    """The paired bootstrap over the prompts of both; they must be the same prompts
    unless `common_only`, which compares over the prompts both have."""
    shared = sorted(set(before.rates) & set(after.rates))
    if not common_only and set(before.rates) != set(after.rates):
        raise ComparisonError(
            f"the two evals cover different prompts ({len(before.rates)} and "
            f"{len(after.rates)}, {len(shared)} in common); evaluate both models on the "
            "same prompts (same suite, split, --limit and --per-family)"
        )
    if not shared:
        raise ComparisonError("the two evals have no prompt in common")
    return paired_bootstrap(
        [before.rates[p] for p in shared],
        [after.rates[p] for p in shared],
        [before.families[p] for p in shared],
        resamples,
        seed,
        confidence,
    )
