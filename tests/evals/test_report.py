"""The report compares evals made alike: one (n, sampling parameters) group, stated."""

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from distillery.evals.report import ReportError, write_report
from distillery.warehouse.records import EvalRecord, ModelRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOT = json.dumps({"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.95, "seed": 0})
COLD = json.dumps({"max_new_tokens": 8, "temperature": 0.2, "top_p": 0.95, "seed": 0})
IDS = ["p0", "p1", "p2"]
FAMS = ["alpha", "beta", "alpha"]


def _eval(model_id, n, k, passes, minutes, p1, pk=None, strategy="sample", params=HOT):  # noqa: PLR0913
    pk = p1 if pk is None else pk
    fam = {"prompts": 1, "pass_at_1": p1, "pass_at_k": pk, "ci_low": 0.0, "ci_high": 1.0}
    return EvalRecord(
        eval_id=f"evl-{model_id}-{strategy}-{n}-{k}-{minutes}",
        model_id=model_id,
        suite="s",
        split="test",
        strategy=strategy,
        n=n,
        k=k,
        prompts=3,
        pass_at_1=p1,
        pass_at_k=pk,
        ci_low=max(0.0, pk - 0.1),
        ci_high=min(1.0, pk + 0.1),
        per_family=json.dumps({"alpha": fam, "beta": fam}),
        samples_per_query=float(k),
        tokens_per_query=10.0 * k,
        seconds_per_query=0.1 * k,
        tokens=100,
        seconds=1.0,
        params=params,
        run_id="run-1",
        prompt_ids=IDS,
        prompt_families=FAMS,
        passes=list(passes),
        created_at=T0 + timedelta(minutes=minutes),
    )


def _models(wh):
    wh.write(
        [
            ModelRecord("mdl-b", "base", "b", "dir", None, None, None, False, False, "run-1"),
            ModelRecord("mdl-t", "tuned", "t", "dir", None, "mdl-b", None, True, False, "run-1"),
        ]
    )


def _sample_pair(model_id, n, passes, minutes, p1, pk, params=HOT):
    """The k=1 and k=n evals of one eval run."""
    return [
        _eval(model_id, n, 1, passes, minutes, p1, params=params),
        _eval(model_id, n, n, passes, minutes, p1, pk, params=params),
    ]


def _report(wh, tmp_path):
    path = write_report(wh, tmp_path / "report", "s", "test", base="base", model="tuned")
    return path.read_text()


def test_evals_of_n8_and_n16_are_never_mixed(wh, tmp_path):
    _models(wh)
    wh.write(
        _sample_pair("mdl-b", 8, [1, 2, 0], 0, 0.111, 0.222)  # base only: left out
        + _sample_pair("mdl-b", 16, [4, 8, 0], 1, 0.25, 0.6)
        + [_eval("mdl-b", 16, 3, [0, 1, 1], 1, 0.667, strategy="best_of_n")]
        + _sample_pair("mdl-t", 16, [12, 16, 4], 2, 0.667, 0.9)
        + _sample_pair("mdl-t", 16, [16, 16, 16], 3, 0.999, 0.999, params=COLD)  # tuned only
    )
    text = _report(wh, tmp_path)
    assert (
        "Evals compared: n = 16 draws per prompt, sampling max_new_tokens 8, seed 0, "
        "temperature 0.8, top_p 0.95" in text
    )
    assert (
        "Left out, never mixed in: pass@1 evals with n = 8 (max_new_tokens 8, seed 0, "
        "temperature 0.8, top_p 0.95); n = 16 (max_new_tokens 8, seed 0, temperature 0.2, "
        "top_p 0.95)." in text
    )
    for marker in ("0.111", "0.222", "0.999"):
        assert marker not in text, marker
    assert "| base | 16 | 3 | 0.600 |" in text and "| tuned | 16 | 3 | 0.900 |" in text
    # Per-prompt pass@1 0.25, 0.5, 0 → 0.75, 1, 0.25: Δ +0.5, +0.5, +0.25.
    assert "| tuned pass@1 − base pass@1 | 3 | +0.417 | [+0.250, +0.500] | +0.333 |" in text
    assert "| tuned pass@1 − base pass@16 |" in text
    # best_of_n solved p1 and p2: Δ per prompt +0.75, 0, -0.75.
    assert "| tuned one sample − base best_of_n(3) | 3 | +0.000 |" in text
    assert "| alpha | 0.250 | 0.600 | 0.667 | 1.19 | +0.375 [+0.250, +0.500] |" in text


def test_the_most_recent_common_group_wins(wh, tmp_path):
    _models(wh)
    wh.write(
        _sample_pair("mdl-b", 16, [4, 8, 0], 1, 0.25, 0.6)
        + _sample_pair("mdl-t", 16, [12, 16, 4], 2, 0.667, 0.9)
        + _sample_pair("mdl-t", 8, [6, 8, 2], 3, 0.666, 0.777)
    )
    assert "n = 16 draws per prompt" in _report(wh, tmp_path)
    # The base model evaluated at n = 8 later: that group is now the latest complete one.
    wh.write(_sample_pair("mdl-b", 8, [2, 4, 0], 4, 0.25, 0.555))
    text = _report(wh, tmp_path)
    assert (
        "n = 8 draws per prompt" in text
        and "Left out, never mixed in: pass@1 evals with n = 16" in text
    )
    assert "0.555" in text and "0.777" in text and "0.600" not in text and "0.900" not in text


def test_no_common_group_is_one_line(wh, tmp_path):
    _models(wh)
    wh.write(
        _sample_pair("mdl-b", 8, [1, 2, 0], 0, 0.111, 0.222)
        + _sample_pair("mdl-t", 16, [12, 16, 4], 2, 0.667, 0.9)
    )
    with pytest.raises(ReportError) as err:
        _report(wh, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        "no pass@1 evals of base and tuned on s/test share n and sampling parameters "
        "(base: n=8 (max_new_tokens 8, seed 0, temperature 0.8, top_p 0.95); tuned: n=16 "
    )
    assert msg.endswith("run `distillery eval` on both with the same --n and sampling options")


def test_the_cost_plot_labels_do_not_overlap_and_keep_each_models_colour():
    """Points within one decade of tokens (the demo's case) once got a label at every minor
    tick, drawn over each other; and the colours of p₀ and p_θ swapped against the other
    plots. Tick labels now never overlap, and p₀ is C0, p_θ C1, as in pass@k and families."""
    from matplotlib.colors import to_rgba

    from distillery.evals.report import cost_figure, require_matplotlib

    require_matplotlib()
    points = [
        (1, "p_theta k=1", 79.4, 0.31),
        (0, "p0 k=1", 80.0, 0.06),
        (0, "p0 best_of_n(4)", 320.0, 0.25),
    ]
    fig = cost_figure(points)
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    lo, hi = ax.get_xlim()
    labels = [
        t
        for t in ax.get_xticklabels(which="both")
        if t.get_visible() and t.get_text() and lo <= t.get_position()[0] <= hi
    ]
    assert not [t.get_text() for t in labels if "times" in t.get_text()]  # plain numbers
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert len(boxes) >= 2  # the axis is labelled at all
    # Apart by at least a character's width (they were 8 px apart, reading as one string).
    boxes.sort(key=lambda b: b.x0)
    gaps = [b.x0 - a.x1 for a, b in pairwise(boxes)]
    assert min(gaps) >= 20, gaps
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert colours == [to_rgba("C1"), to_rgba("C0"), to_rgba("C0")]
