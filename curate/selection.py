"""Selection for RSFT: which verified samples become training targets.

Passing samples only, deduplicated by normalised text within a prompt, capped per prompt,
optionally capped per family so easy families do not dominate, and optionally only the
best-scoring one per prompt (best-of-N as the training target). Prompts with no passing
sample are counted: they are what RSFT cannot teach.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from distillery.config.base import StageConfig, at_least
from distillery.filters import reasons
from distillery.warehouse.store import Warehouse

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Candidate:
    """A verified sample, as selection and pairing see it."""

    sample_id: str
    prompt_id: str
    family: str
    text: str
    passed: bool
    score: float  # the verdict's score; a missing score counts as 1 if passed, else 0
    # What drew it: "sample" (the bare prompt), "prompted" (a context before it) or
    # "retry" (a follow-up after the verifier's feedback). Any passing one is a target for
    # the bare prompt; only a "sample" is what the model does unaided (a DPO rejection).
    procedure: str = "sample"


@dataclass(frozen=True)
class SelectionConfig(StageConfig):
    """Which verified samples become RSFT's training targets."""

    mode: Literal["all", "best"] = "all"
    """all: every distinct passing sample (capped); best: the top-scoring one per prompt."""
    samples_per_prompt: int = 4
    """At most this many targets per prompt."""
    samples_per_family: int | None = None
    """At most this many targets per family (taken round-robin over its prompts)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.samples_per_prompt, 1, "samples_per_prompt")
        at_least(self.samples_per_family, 1, "samples_per_family")


@dataclass
class SelectionReport:
    selected: list[Candidate] = field(default_factory=list)
    prompts: int = 0
    prompts_without_pass: int = 0
    duplicates_dropped: int = 0
    capped: int = 0
    per_family: Counter[str] = field(default_factory=Counter)


def normalise(text: str) -> str:
    """Texts equal after this are the same training target."""
    return _SPACE.sub(" ", text.strip()).casefold()


def _rank(c: Candidate) -> tuple[float, int, str]:
    # Best score first; among equals the shorter completion, then a stable tie-break.
    return (-c.score, len(c.text), c.sample_id)


def select(candidates: Iterable[Candidate], config: SelectionConfig) -> SelectionReport:
    report = SelectionReport()
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_prompt[c.prompt_id].append(c)
    report.prompts = len(by_prompt)
    kept_by_family: dict[str, list[list[Candidate]]] = defaultdict(list)
    for prompt_id in sorted(by_prompt):
        passing = sorted((c for c in by_prompt[prompt_id] if c.passed), key=_rank)
        if not passing:
            report.prompts_without_pass += 1
            continue
        seen: set[str] = set()
        unique = []
        for c in passing:
            key = normalise(c.text)
            if key in seen:
                report.duplicates_dropped += 1
                continue
            seen.add(key)
            unique.append(c)
        cap = 1 if config.mode == "best" else config.samples_per_prompt
        report.capped += max(0, len(unique) - cap)
        kept_by_family[unique[0].family].append(unique[:cap])
    for family in sorted(kept_by_family):
        groups = kept_by_family[family]
        chosen = [c for g in groups for c in g]
        if config.samples_per_family is not None and len(chosen) > config.samples_per_family:
            # Round-robin over the family's prompts, so the cap thins every prompt alike
            # instead of dropping whole prompts.
            chosen = []
            depth = 0
            while len(chosen) < config.samples_per_family:
                layer = [g[depth] for g in groups if depth < len(g)]
                if not layer:
                    break
                chosen += layer[: config.samples_per_family - len(chosen)]
                depth += 1
            report.capped += sum(len(g) for g in groups) - len(chosen)
        report.selected += chosen
        report.per_family[family] += len(chosen)
    return report


def scope_filter(
    suite: str | None,
    split: str | None,
    model: str | None,
    samples: list[tuple[str, str]],
) -> tuple[str, list[object]]:
    """` AND ...` conditions (and their parameters) for rows of `suite` and `split` (prompts
    aliased `p`) whose samples are all `model`'s, by name or id: `samples` lists each
    sample's (models alias, samples alias)."""
    sql, params = "", []
    for column, value in (("p.suite", suite), ("p.split", split)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    if model:
        for m, s in samples:
            sql += f" AND ({m}.name = ? OR {s}.model_id = ?)"
            params += [model, model]
    return sql, params


def load_candidates(
    wh: Warehouse, suite: str | None, model: str | None, split: str | None
) -> list[Candidate]:
    """Verified samples (their latest verdict) of a suite, model and split."""
    sql = (
        "SELECT s.sample_id, s.prompt_id, p.family, s.text, v.passed, v.score, "
        "coalesce(s.strategy, 'sample') "
        "FROM samples s JOIN prompts p USING (prompt_id) JOIN verdicts v USING (sample_id) "
        "LEFT JOIN models m USING (model_id) WHERE true"
    )
    where, params = scope_filter(suite, split, model, [("m", "s")])
    sql += where
    sql += (
        " QUALIFY row_number() OVER (PARTITION BY s.sample_id ORDER BY v.created_at DESC) = 1"
        # A verifier that failed on the text says nothing of the model: neither a target
        # nor a rejected answer.
        " AND v.reason <> ?"
        " ORDER BY s.prompt_id, s.sample_id"
    )
    params.append(reasons.VERIFIER_ERROR)
    return [
        Candidate(
            sid,
            pid,
            fam,
            text,
            bool(passed),
            float(score) if score is not None else (1.0 if passed else 0.0),
            procedure,
        )
        for sid, pid, fam, text, passed, score, procedure in wh.query(sql, params)
    ]
