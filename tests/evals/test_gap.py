"""Gap closed per family: (p_θ − p₀) / (search − p₀), with a family where the search found
nothing beyond p₀ named as such instead of divided by zero."""

import pytest
from rich.console import Console

from distillery.evals.gap import ALL, GapRow, gap_rows, markdown, table
from tests.evals.test_report import _eval


def test_gap_closed_per_family_and_overall():
    # Prompts p0, p2 are alpha, p1 is beta; n = 4 draws each.
    base = _eval("mdl-b", 4, 1, [0, 0, 1], 0, 1 / 12)
    baked = _eval("mdl-t", 4, 1, [2, 0, 3], 0, 5 / 12)
    rows = {r.family: r for r in gap_rows(base, baked, {"alpha": (2, 2), "beta": (0, 1)})}
    alpha, beta, every = rows["alpha"], rows["beta"], rows[ALL]
    # alpha: p₀ (0 + 0.25) / 2 = 0.125, p_θ (0.5 + 0.75) / 2 = 0.625, search 2/2 = 1.
    assert (alpha.base, alpha.model, alpha.search) == (0.125, 0.625, 1.0)
    assert alpha.gap_closed == pytest.approx(0.5 / 0.875)
    # beta: the search solved nothing, so there is no gap to close.
    assert (beta.search, beta.gap_closed, beta.gap_text) == (0.0, None, "search found none")
    # all: p₀ 1/12, p_θ 5/12, search 2/3.
    assert every.gap_closed == pytest.approx((5 / 12 - 1 / 12) / (2 / 3 - 1 / 12))
    assert every.prompts == 3 and every.delta == pytest.approx(1 / 3)
    assert every.delta_ci[0] <= every.delta <= every.delta_ci[1]
    text = markdown(list(rows.values()))
    assert text.count("\n") == 4 and "| beta | 1 |" in text and "search found none" in text


def test_the_terminal_table_reads_whole_at_80_columns():
    """Every figure and interval is printed in full (no `…`, no split number) within 80
    columns, as a log file or a narrow terminal shows it."""
    rows = [
        GapRow("summary", 6, 0.25, (0.0, 0.5), 0.833, (0.5, 1.0), 0.562, (0.25, 0.88),
               0.312, (-0.06, 0.54), 0.54),
        GapRow("code", 6, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), 0.0, (0.0, 0.0),
               None),
    ]  # fmt: skip
    console = Console(width=80, record=True, force_terminal=False)
    console.print(table(rows, "smollm2-135m → demo-r1: held-out seeds, n=8, bare prompt"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "…" not in text
    for figure in ("0.250", "0.00–0.50", "0.833", "0.50–1.00", "0.562", "0.25–0.88",
                   "+0.312", "-0.06–+0.54", "+0.54"):  # fmt: skip
        assert figure in text, figure
    summary = next(line for line in lines if line.strip().startswith("summary"))
    assert summary.split() == ["summary", "6", "0.250", "0.833", "0.562", "+0.312", "+0.54"]
