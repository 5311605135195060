"""Shared plumbing for the procedural seed families: fill both splits from a candidate stream.

Every procedural family (number, date, json, summary) works the same way: a seeded
generator yields candidate prompts, repeats are dropped, each survivor lands in a split
by a stable hash of its key, and generation stops once both splits hold their fixed
quota. Keeping that here means every family dedups, splits and caps identically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from distillery.tasks.base import TEST, TRAIN, TaskPrompt, split_for

# Far more than any family needs; only a generator that keeps repeating itself hits it.
MAX_CANDIDATES = 200_000


@dataclass(frozen=True)
class Candidate:
    """One possible prompt before dedup and splitting."""

    key: str  # the underlying question; two phrasings of one question share a key
    user: str
    spec: dict[str, Any]
    reference: str | None = None
    # What decides the split when it must be coarser than `key` (json: the entity, so a
    # city asked about in train never reappears in test under another template).
    split_key: str | None = None


def fill_splits(
    suite: str,
    family: str,
    candidates: Iterable[Candidate],
    n_train: int,
    n_test: int,
    max_candidates: int = MAX_CANDIDATES,
) -> list[TaskPrompt]:
    """Take candidates in order until exactly `n_train` train and `n_test` test prompts.

    The first candidate per key (and per user text) wins. The split comes from the key,
    never from the position in the stream, so a prompt keeps its split when the
    generators change around it. Raises if the stream runs dry first, because silently
    shipping fewer prompts would change what every downstream count means.
    """
    quota = {TRAIN: n_train, TEST: n_test}
    taken = {TRAIN: 0, TEST: 0}
    seen_keys: set[str] = set()
    seen_texts: set[str] = set()
    out: list[TaskPrompt] = []
    for i, cand in enumerate(candidates):
        if i >= max_candidates:
            break
        if cand.key in seen_keys or cand.user in seen_texts:
            continue
        split = split_for(f"{family}:{cand.split_key or cand.key}")
        if taken[split] >= quota[split]:
            continue
        seen_keys.add(cand.key)
        seen_texts.add(cand.user)
        taken[split] += 1
        out.append(TaskPrompt.make(suite, family, split, cand.user, cand.spec, cand.reference))
        if taken[TRAIN] == n_train and taken[TEST] == n_test:
            return out
    raise RuntimeError(
        f"{family}: candidates ran out at {taken[TRAIN]}/{n_train} train and "
        f"{taken[TEST]}/{n_test} test prompts"
    )
