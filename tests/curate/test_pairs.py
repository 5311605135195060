import pytest

from distillery.curate.pairs import build_pairs
from distillery.curate.pairs_config import PairConfig
from distillery.curate.selection import Candidate


def c(sid, pid, passed, score=None, text=None):
    score = (1.0 if passed else 0.0) if score is None else score
    return Candidate(sid, pid, "f", text if text is not None else f"text {sid}", passed, score)


def ids(report):
    return [(p.chosen.sample_id, p.rejected.sample_id) for p in report.pairs]


def test_pass_fail_uses_each_sample_once_best_with_worst():
    cands = [
        c("p1", "q", True, 1.0),
        c("p2", "q", True, 0.8),
        c("f1", "q", False, 0.5),
        c("f2", "q", False, 0.0),
    ]
    r = build_pairs(cands, PairConfig())
    assert ids(r) == [("p1", "f2"), ("p2", "f1")]
    assert [p.margin for p in r.pairs] == [1.0, pytest.approx(0.3)]


def test_all_pass_and_all_fail_prompts_yield_nothing_and_are_counted():
    cands = [c("a", "q1", True), c("b", "q1", True), c("x", "q2", False), c("y", "q2", False)]
    r = build_pairs(cands, PairConfig())
    assert r.pairs == [] and (r.prompts, r.all_pass, r.all_fail) == (2, 1, 1)


def test_identical_texts_never_pair():
    cands = [c("a", "q", True, text="42"), c("b", "q", False, text=" 42\n")]
    r = build_pairs(cands, PairConfig())
    assert r.pairs == [] and r.no_contrast == 1


def test_all_strategy_and_cap():
    cands = [c("p1", "q", True), c("p2", "q", True), c("f1", "q", False), c("f2", "q", False)]
    r = build_pairs(cands, PairConfig(pairing="all", pairs_per_prompt=3))
    assert len(r.pairs) == 3 and len(set(ids(r))) == 3
    assert all(p.chosen.passed and not p.rejected.passed for p in r.pairs)


def test_best_worst_uses_scores_even_among_failures():
    cands = [c("a", "q", False, 0.6), c("b", "q", False, 0.1), c("d", "q", False, 0.6, "text a")]
    r = build_pairs(cands, PairConfig(pairing="best-worst", pairs_per_prompt=1))
    assert ids(r) == [("a", "b")] and r.pairs[0].margin == pytest.approx(0.5)
    ties = build_pairs(
        [c("a", "q", True, 1.0), c("b", "q", True, 1.0)], PairConfig(pairing="best-worst")
    )
    assert ties.pairs == [] and ties.all_pass == 1


def test_min_margin_and_stable_ids():
    cands = [c("p", "q", True, 0.6), c("f", "q", False, 0.5)]
    assert build_pairs(cands, PairConfig(min_margin=0.2)).pairs == []
    (pair,) = build_pairs(cands, PairConfig()).pairs
    assert pair.pair_id("pass-fail") == pair.pair_id("pass-fail") != pair.pair_id("all")
    rec = pair.to_record("pass-fail", "run-1")
    assert (rec.chosen_id, rec.rejected_id, rec.pairing) == ("p", "f", "pass-fail")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairing": "random"}, "--pairing must be one of"),
        ({"pairs_per_prompt": 0}, "--pairs-per-prompt"),
        ({"min_margin": -1}, "--min-margin"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PairConfig(**kwargs)


@pytest.mark.parametrize("pairing", ["pass-fail", "all", "best-worst"])
def test_search_passes_are_chosen_and_only_bare_failures_are_rejected(pairing):
    def d(sid, passed, procedure):
        return Candidate(sid, "q", "f", f"t {sid}", passed, float(passed), procedure)

    cands = [
        d("prompted-ok", True, "prompted"),
        d("retry-ok", True, "retry"),
        d("prompted-bad", False, "prompted"),
        d("retry-bad", False, "retry"),
        d("bare-bad", False, "sample"),
    ]
    r = build_pairs(cands, PairConfig(pairing, pairs_per_prompt=8))
    assert {p.rejected.sample_id for p in r.pairs} == {"bare-bad"}
    assert {p.chosen.sample_id for p in r.pairs} <= {"prompted-ok", "retry-ok"}
    # A prompt whose only failures came from the search itself has nothing to reject.
    only_search = [x for x in cands if x.procedure != "sample"]
    assert build_pairs(only_search, PairConfig(pairing)).pairs == []
