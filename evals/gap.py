"""Before/after per family: p₀'s pass@1, the search's success, p_θ's pass@1, gap closed.

Gap closed = (pass@1 p_θ − pass@1 p₀) / (search success − pass@1 p₀): the share of what
search bought at every query that the weights now give in one sample. Both pass@1 figures
come from evals of the same prompts, n and sampling parameters (p_θ sampled with the bare
prompt), compared by a paired bootstrap; the search's success is the share of the same
held-out prompts it solved within its budget. A family where the search found nothing
beyond p₀ has no gap to close and says so instead of dividing by zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from rich import box
from rich.table import Column, Table

from distillery.evals.paired import compare, outcomes
from distillery.warehouse.passk import bootstrap_interval
from distillery.warehouse.records import EvalRecord

ALL = "all"


@dataclass(frozen=True)
class GapRow:
    family: str
    prompts: int
    base: float
    base_ci: tuple[float, float]
    search: float
    search_ci: tuple[float, float]
    model: float
    model_ci: tuple[float, float]
    delta: float
    delta_ci: tuple[float, float]
    gap_closed: float | None  # None: the search found nothing beyond p₀ here

    @property
    def gap_text(self) -> str:
        return "search found none" if self.gap_closed is None else f"{self.gap_closed:+.2f}"


def _solved_ci(solved: int, total: int) -> tuple[float, float]:
    return bootstrap_interval([1.0] * solved + [0.0] * (total - solved))


def gap_rows(
    base: EvalRecord, model: EvalRecord, search_solved: Mapping[str, tuple[int, int]]
) -> list[GapRow]:
    """One row per family and one for all; `search_solved` maps family -> (solved, prompts)
    of the search on the same held-out prompts."""
    cmp = compare(outcomes(base), outcomes(model))
    fam_base, fam_model = json.loads(base.per_family), json.loads(model.per_family)
    rows = []
    for fam in [*sorted(cmp.families), ALL]:
        if fam == ALL:
            d = cmp.overall
            b_ci, m_ci = (base.ci_low, base.ci_high), (model.ci_low, model.ci_high)
            solved = sum(s for s, _ in search_solved.values())
            total = sum(t for _, t in search_solved.values())
        else:
            d = cmp.families[fam]
            fb, fm = fam_base[fam], fam_model[fam]
            b_ci, m_ci = (fb["ci_low"], fb["ci_high"]), (fm["ci_low"], fm["ci_high"])
            solved, total = search_solved.get(fam, (0, 0))
        s = solved / total if total else 0.0
        room = s - d.before
        rows.append(
            GapRow(
                fam,
                d.prompts,
                d.before,
                b_ci,
                s,
                _solved_ci(solved, total) if total else (0.0, 0.0),
                d.after,
                m_ci,
                d.delta,
                (d.ci_low, d.ci_high),
                (d.after - d.before) / room if room > 1e-9 else None,
            )
        )
    return rows


def markdown(rows: list[GapRow]) -> str:
    def ci(x: float, lo_hi: tuple[float, float]) -> str:
        return f"{x:.3f} [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"

    out = [
        "| family | prompts | p₀ pass@1 [95% CI] | search success [95% CI] | "
        "p_θ pass@1 [95% CI] | Δ paired [95% CI] | gap closed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.family} | {r.prompts} | {ci(r.base, r.base_ci)} | {ci(r.search, r.search_ci)} "
            f"| {ci(r.model, r.model_ci)} | {r.delta:+.3f} [{r.delta_ci[0]:+.3f}, "
            f"{r.delta_ci[1]:+.3f}] | {r.gap_text} |"
        )
    return "\n".join(out)


def table(rows: list[GapRow], title: str) -> Table:
    """The terminal's version: each figure over its 95% interval, in columns that do not
    wrap, so that it reads whole at 80 columns and in a log file (the markdown above is
    for the report)."""

    def cell(x: float, lo_hi: tuple[float, float], sign: str = "") -> str:
        return f"{x:{sign}.3f}\n{lo_hi[0]:{sign}.2f}–{lo_hi[1]:{sign}.2f}"

    figures = ("p₀ pass@1", "search", "p_θ pass@1", "Δ paired")
    out = Table(
        Column("family", no_wrap=True),
        Column("prompts", justify="right", no_wrap=True),
        *(Column(name, justify="right", no_wrap=True) for name in figures),
        Column("gap closed", min_width=10),
        title=title,
        caption="each figure over its 95% interval",
        box=box.SIMPLE_HEAD,
        show_lines=True,
        pad_edge=False,
        collapse_padding=True,
    )
    for r in rows:
        out.add_row(
            r.family,
            str(r.prompts),
            cell(r.base, r.base_ci),
            cell(r.search, r.search_ci),
            cell(r.model, r.model_ci),
            cell(r.delta, r.delta_ci, "+"),
            r.gap_text,
            style="bold" if r.family == ALL else None,
        )
    return out
