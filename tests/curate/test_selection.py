import pytest

from distillery.curate.select_config import SelectionConfig
from distillery.curate.selection import Candidate, normalise, select


def c(sid, pid, passed, score=None, text=None, family="f"):
    score = (1.0 if passed else 0.0) if score is None else score
    return Candidate(sid, pid, family, text if text is not None else f"text {sid}", passed, score)


def test_keeps_only_passing_and_counts_prompts_without_a_pass():
    r = select([c("a", "p1", True), c("b", "p1", False), c("x", "p2", False)], SelectionConfig())
    assert [s.sample_id for s in r.selected] == ["a"]
    assert (r.prompts, r.prompts_without_pass) == (2, 1)


def test_dedups_by_normalised_text_within_a_prompt_only():
    cands = [
        c("a", "p1", True, text="return  x"),
        c("b", "p1", True, text="RETURN x\n"),
        c("d", "p2", True, text="return x"),
    ]
    r = select(cands, SelectionConfig())
    assert sorted(s.sample_id for s in r.selected) == ["a", "d"]
    assert r.duplicates_dropped == 1
    assert normalise("  A\n\tb ") == "a b"


def test_cap_per_prompt_keeps_the_best_then_shortest():
    cands = [
        c("a", "p", True, 0.9, "long text here"),
        c("b", "p", True, 1.0, "x" * 50),
        c("d", "p", True, 0.9, "short"),
        c("e", "p", True, 0.5, "e"),
    ]
    r = select(cands, SelectionConfig(samples_per_prompt=2))
    assert [s.sample_id for s in r.selected] == ["b", "d"]
    assert r.capped == 2
    best = select(cands, SelectionConfig(mode="best"))
    assert [s.sample_id for s in best.selected] == ["b"]


def test_ties_break_stably_by_length_then_id():
    cands = [c("z", "p", True, 1.0, "same"), c("a", "p", True, 1.0, "also")]
    assert [s.sample_id for s in select(cands, SelectionConfig(mode="best")).selected] == ["a"]


def test_family_cap_thins_every_prompt_alike():
    easy = [c(f"e{p}{i}", f"easy{p}", True, family="easy") for p in range(3) for i in range(4)]
    hard = [c("h0", "hard0", True, family="hard")]
    r = select(easy + hard, SelectionConfig(samples_per_prompt=4, samples_per_family=6))
    assert r.per_family == {"easy": 6, "hard": 1}
    per_prompt = {}
    for s in r.selected:
        per_prompt[s.prompt_id] = per_prompt.get(s.prompt_id, 0) + 1
    assert per_prompt == {"easy0": 2, "easy1": 2, "easy2": 2, "hard0": 1}
    assert r.capped == 6


def test_bad_config():
    with pytest.raises(ValueError, match="--mode must be one of all, best"):
        SelectionConfig(mode="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--samples-per-prompt must be at least 1"):
        SelectionConfig(samples_per_prompt=0)
