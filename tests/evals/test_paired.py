"""The paired bootstrap: pairing, per-family resampling, seeding, alignment, older rows."""

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillery.evals.paired import (
    ComparisonError,
    Outcomes,
    compare,
    outcomes,
    paired_bootstrap,
    read_evals,
)
from distillery.warehouse.passk import bootstrap_interval
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.tables import TABLES
from distillery.warehouse.writer_parquet import to_arrow


def _record(strategy="sample", n=4, passes=(0, 1, 4), k=1):
    ids = [f"p{i}" for i in range(len(passes))]
    return EvalRecord(
        eval_id=f"evl-{strategy}-{k}",
        model_id="m",
        suite="s",
        split="test",
        strategy=strategy,
        n=n,
        k=k,
        prompts=len(passes),
        pass_at_1=0.0,
        pass_at_k=0.0,
        ci_low=0.0,
        ci_high=0.0,
        per_family="{}",
        samples_per_query=1.0,
        tokens_per_query=1.0,
        seconds_per_query=1.0,
        tokens=1,
        seconds=1.0,
        params="{}",
        run_id="run-1",
        prompt_ids=ids,
        prompt_families=["a", "b", "a"][: len(passes)],
        passes=list(passes),
    )


def test_pairing_finds_a_small_gain_that_two_separate_intervals_hide():
    # Prompts range from hopeless to easy; the model gains 0.05 on every prompt but a few.
    before = [i / 50 for i in range(50)]
    after = [b + (0.05 if i % 10 else -0.05) for i, b in enumerate(before)]
    c = paired_bootstrap(before, after, ["x"] * 50)
    assert c.overall.delta == pytest.approx(0.04)
    assert 0 < c.overall.lower_bound < 0.04
    assert c.overall.ci_low <= c.overall.lower_bound < c.overall.ci_high
    lo_after, _ = bootstrap_interval(after, 2000, 0)
    _, hi_before = bootstrap_interval(before, 2000, 0)
    assert lo_after < hi_before  # unpaired, the intervals overlap widely


def test_a_constant_shift_has_no_spread_and_no_change_is_exactly_zero():
    c = paired_bootstrap([0.25, 0.5, 0.0], [0.5, 0.75, 0.25], ["a", "a", "b"])
    assert (c.overall.ci_low, c.overall.lower_bound, c.overall.ci_high) == (0.25, 0.25, 0.25)
    z = paired_bootstrap([0.5, 0.25], [0.5, 0.25], ["a", "a"])
    assert (z.overall.delta, z.overall.lower_bound, z.overall.ci_high) == (0.0, 0.0, 0.0)


def test_families_resample_within_themselves_independently_of_the_others():
    before = [0.0, 0.25, 0.5, 0.75] * 5 + [1.0] * 6
    after = [0.25, 0.25, 0.75, 0.75] * 5 + [0.5, 0.75, 0.25, 0.5, 0.5, 0.5]
    fams = ["a"] * 20 + ["b"] * 6
    c = paired_bootstrap(before, after, fams, seed=3)
    assert {f: d.prompts for f, d in c.families.items()} == {"a": 20, "b": 6}
    assert c.families["a"].delta == pytest.approx(0.125)
    assert c.families["b"].delta == pytest.approx(-0.5)
    assert c.families["b"].ci_high < 0 < c.families["a"].ci_low
    # Adding a third family leaves family a's figures as they were.
    more = paired_bootstrap([*before, 0.0], [*after, 1.0], [*fams, "c"], seed=3)
    assert more.families["a"] == c.families["a"]
    # Seeded and deterministic.
    assert paired_bootstrap(before, after, fams, seed=3) == c


def test_bad_input_is_refused():
    with pytest.raises(ComparisonError, match="same non-zero number"):
        paired_bootstrap([0.5], [0.5, 0.5], ["a"])
    with pytest.raises(ComparisonError, match="same non-zero number"):
        paired_bootstrap([], [], [])
    with pytest.raises(ComparisonError, match="confidence"):
        paired_bootstrap([0.5], [0.5], ["a"], confidence=0.4)


def test_compare_aligns_by_prompt_id_and_insists_on_the_same_prompts():
    a = Outcomes({"p1": 0.0, "p2": 1.0, "p3": 0.5}, {"p1": "x", "p2": "x", "p3": "y"})
    b = Outcomes({"p3": 0.75, "p1": 0.25, "p2": 1.0}, {"p1": "x", "p2": "x", "p3": "y"})
    c = compare(a, b)
    assert c.overall.delta == pytest.approx(0.5 / 3)
    assert c.families["y"].delta == pytest.approx(0.25)
    fewer = Outcomes({"p1": 1.0, "p2": 1.0}, {"p1": "x", "p2": "x"})
    with pytest.raises(ComparisonError, match=r"different prompts \(3 and 2, 2 in common\)"):
        compare(a, fewer)
    assert compare(a, fewer, common_only=True).overall.prompts == 2


def test_outcomes_of_a_sampling_eval_and_of_a_strategy():
    o = outcomes(_record(passes=(0, 1, 4)))
    assert o.rates == {"p0": 0.0, "p1": 0.25, "p2": 1.0}
    assert o.families == {"p0": "a", "p1": "b", "p2": "a"}
    assert outcomes(_record(passes=(0, 1, 4)), k=2).rates["p1"] == pytest.approx(0.5)
    assert outcomes(_record("best_of_n", n=8, passes=(0, 1, 1))).rates == {
        "p0": 0.0,
        "p1": 1.0,
        "p2": 1.0,
    }


def test_an_eval_file_from_before_the_outcomes_still_reads(wh):
    new = _record()
    spec = TABLES["evals"]
    table = to_arrow(spec, [dataclasses.replace(new, eval_id="evl-old")])
    old = table.drop_columns(["prompt_ids", "prompt_families", "passes"])
    path = wh.root / "tables" / "evals" / "run_id=run-old"
    path.mkdir(parents=True)
    pq.write_table(old, path / "old.parquet")
    wh.write([new])
    rows = {r.eval_id: r for r in read_evals(wh, "true ORDER BY eval_id", [])}
    assert rows["evl-old"].prompt_ids == [] and rows["evl-old"].passes == []
    assert rows["evl-sample-1"].passes == [0, 1, 4]
    assert isinstance(rows["evl-old"].created_at, type(new.created_at))
    with pytest.raises(ComparisonError, match="no per-prompt outcomes"):
        outcomes(rows["evl-old"])
    assert spec.schema.field("passes").type == pa.list_(pa.int64())
