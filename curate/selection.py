"""Selection for RSFT: which verified samples become training targets.

Passing samples only, deduplicated by normalised text within a prompt, capped per prompt,
optionally capped per family so easy families do not dominate, and optionally only the
best-scoring one per prompt (best-of-N as the training target). Prompts with no passing
sample are counted: they are what RSFT cannot teach. The select stage stores a selection
(`selections`); RSFT reads the latest one for its scope and settings (`stored_selection`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from distillery.curate.select_config import SelectionConfig
from distillery.filters import reasons
from distillery.warehouse.ids import content_id
from distillery.warehouse.records import SelectionRecord
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
        "coalesce(s.procedure, 'sample') "
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


def model_id_of(wh: Warehouse, name_or_id: str) -> str:
    """The id of a registered model named `name_or_id`; else the string itself (an id)."""
    from distillery.generators.model_store import model_row

    row = model_row(wh, name_or_id)
    return row.model_id if row is not None else name_or_id


def selection_record(
    config: SelectionConfig,
    scope: tuple[str | None, str, str | None],
    report: SelectionReport,
    run_id: str,
) -> SelectionRecord:
    """The stored form of `report`, chosen with `config` in `scope` (suite, model id, split)."""
    suite, model_id, split = scope
    ids = [c.sample_id for c in report.selected]
    settings = (config.mode, config.samples_per_prompt, config.samples_per_family)
    return SelectionRecord(
        selection_id=content_id("sel", suite, model_id, split, *settings, ids),
        suite=suite,
        model_id=model_id,
        split=split,
        mode=config.mode,
        samples_per_prompt=config.samples_per_prompt,
        samples_per_family=config.samples_per_family,
        sample_ids=ids,
        prompts=report.prompts,
        prompts_without_pass=report.prompts_without_pass,
        run_id=run_id,
    )


def stored_selection(
    wh: Warehouse,
    config: SelectionConfig,
    scope: tuple[str | None, str, str | None],
) -> tuple[str, list[str]] | None:
    """(selection id, sample ids) of the latest selection the select stage stored for
    `scope` (suite, model id, split) with `config`'s settings: what RSFT trains on."""
    suite, model_id, split = scope
    rows = wh.query(
        "SELECT selection_id, sample_ids FROM selections "
        "WHERE suite IS NOT DISTINCT FROM ? AND model_id = ? AND split IS NOT DISTINCT FROM ? "
        "AND mode = ? AND samples_per_prompt = ? AND samples_per_family IS NOT DISTINCT FROM ? "
        "ORDER BY created_at DESC LIMIT 1",
        [
            suite,
            model_id,
            split,
            config.mode,
            config.samples_per_prompt,
            config.samples_per_family,
        ],
    )
    return (rows[0][0], list(rows[0][1])) if rows else None
