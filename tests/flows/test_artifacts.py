"""The markdown and table builders behind the UI artifacts, and shard planning."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from distillery.filters.verification import FamilyCounts
from distillery.flows import artifacts
from distillery.flows.bake_flow import bake_md, round_model
from distillery.flows.task_runners import RunnerError, make_task_runner
from distillery.generators.base import SamplingError
from distillery.generators.sampling import shard
from distillery.warehouse.records import EvalRecord


def test_md_table():
    assert artifacts.md_table(["a", "b"], [(1, "x"), (2, "y")]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y |"
    )


def test_verify_rows_count_reasons_per_family():
    per_family = {
        "json": FamilyCounts(4, 3, Counter({"ok": 3, "invalid_json": 1})),
        "code": FamilyCounts(2, 0, Counter({"timeout": 2})),
    }
    assert artifacts.verify_rows(per_family) == [
        {"family": "code", "verified": 2, "passed": 0, "pass_rate": 0.0, "timeout": 2},
        {
            "family": "json",
            "verified": 4,
            "passed": 3,
            "pass_rate": 0.75,
            "ok": 3,
            "invalid_json": 1,
        },
    ]
    md = artifacts.verify_md(4, 2, 4, 1, 0.5, per_family)
    assert "6 samples: 2 already verified, **4** verdicts written in 0.5s, 1 sandbox" in md
    assert "| json | 4 | 75.0% | ok 3, invalid_json 1 |" in md


def _eval(model_id: str, k: int, p1: float, pk: float) -> EvalRecord:
    fam = {"prompts": 2, "pass_at_1": p1, "pass_at_k": pk, "ci_low": 0.0, "ci_high": 1.0}
    return EvalRecord(
        eval_id=f"evl-{k}",
        model_id=model_id,
        suite="s",
        split="test",
        strategy="sample",
        n=4,
        k=k,
        prompts=2,
        pass_at_1=p1,
        pass_at_k=pk,
        ci_low=0.1,
        ci_high=0.9,
        per_family=json.dumps({"alpha": fam}),
        samples_per_query=4.0,
        tokens_per_query=8.0,
        seconds_per_query=0.1,
        tokens=64,
        seconds=1.0,
        params="{}",
        run_id="run-x",
    )


def test_eval_rows_have_overall_and_each_family_per_k():
    rows = artifacts.eval_rows("m", [_eval("mdl-1", 1, 0.25, 0.25), _eval("mdl-1", 4, 0.25, 0.5)])
    assert [(r["k"], r["family"], r["pass@k"]) for r in rows] == [
        (1, "all", 0.25),
        (1, "alpha", 0.25),
        (4, "all", 0.5),
        (4, "alpha", 0.5),
    ]
    assert rows[0]["ci95"] == "[0.100, 0.900]"


def test_promotion_and_bake_markdown():
    md = artifacts.promotion_md(
        "t-r1",
        False,
        {"model_pass_at_1": 0.2, "parent_pass_at_1": 0.5, "delta": -0.3},
        ["pass@1 fell by 0.300"],
    )
    assert "**REFUSED** t-r1" in md and "(-0.300)" in md and "- pass@1 fell by 0.300" in md
    paired = {"model_pass_at_1": 0.52, "parent_pass_at_1": 0.5, "delta": 0.02, "prompts": 100}
    paired |= {"confidence": 0.95, "ci_low": -0.03, "ci_high": 0.07, "lower_bound": -0.02}
    md = artifacts.promotion_md("t-r1", False, paired, [])
    line = "paired Δ over 100 prompts: 95% CI [-0.030, +0.070], one-sided 95% lower bound -0.020"
    assert line in md
    rounds = [
        {
            "round": 1,
            "from": "p0",
            "sampled": 32,
            "train_pass_rate": 0.5,
            "examples": 16,
            "steps": 3,
            "loss": "2.000 → 1.000",
            "parent_pass_at_1": 0.1,
            "model_pass_at_1": 0.4,
            "decision": "promoted",
        }
    ]
    md = bake_md("t", "p0", rounds, "t-r1")
    assert "base **p0** → final **t-r1** after 1 round(s)" in md
    assert "| 1 | p0 | 32 | 50.0% | 16 | 3 | 2.000 → 1.000 | 0.100 | 0.400 | promoted |" in md
    assert round_model("t", 2) == "t-r2"


def test_shards_are_consecutive_and_capped():
    ids = [f"p{i}" for i in range(10)]
    assert shard(ids, 4, 100) == [ids[0:4], ids[4:8], ids[8:10]]
    assert shard(ids, 1, 3) == [ids[0:4], ids[4:8], ids[8:10]]  # grown to stay ≤ 3 shards
    assert shard([], 4, 10) == []
    with pytest.raises(SamplingError, match="--shard-prompts must be at least 1"):
        shard(ids, 0, 10)


def test_task_runner_names():
    with pytest.raises(RunnerError, match="unknown runner 'ray'; use one of threads, dask"):
        make_task_runner("ray")
    assert type(make_task_runner("threads")).__name__ == "ThreadPoolTaskRunner"
    assert type(make_task_runner("dask", dask_workers=2)).__name__ == "DaskTaskRunner"


def test_progress_counts_are_throttled_the_last_always_sent_none_once_stopping(monkeypatch):
    import prefect.artifacts

    from distillery.generators.interrupt import STOP

    sent = []
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", lambda i, p: sent.append(p))
    bar = artifacts.ProgressArtifact.attach("art-1", every=3600)
    bar.update(0.1, force=True)
    bar.count(1, 3)  # within `every` of the last update: not sent
    bar.count(0, 0)  # no total (nothing to do): nothing to say
    bar.count(3, 3)  # the last item
    assert sent == [10.0, 100.0]
    STOP.set()
    try:
        bar.count(3, 3)
    finally:
        STOP.clear()
    assert sent == [10.0, 100.0]
