"""`distillery bake` on the session's Prefect server: child flow runs, shard tasks, artifacts,
exact warehouse counts, and kill -9 during sampling and during training.

tiny-random's completions are random text; the suite's verifier (a vowel somewhere) passes
most of them and fails some, so every stage has real work: verified samples to select,
a TRL run, held-out evals and a gate decision.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli, spawn
from tests.flows import prefect_api
from tests.rows import query_rows
from tests.stages import load_prompts

pytestmark = pytest.mark.e2e

SPEC = {"kind": "regex", "pattern": "(?s).*[aeiou].*"}


def load_suite(tmp_path: Path, wh: Path, train: int, test: int) -> None:
    rows = [
        {
            "prompt": f"say something {i}",
            "family": "alpha" if i % 2 else "beta",
            "split": "train",
            "verifier": SPEC,
        }
        for i in range(train)
    ] + [
        {
            "prompt": f"held-out {i}",
            "family": "alpha" if i % 2 else "beta",
            "split": "test",
            "verifier": SPEC,
        }
        for i in range(test)
    ]
    f = tmp_path / "vowels.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_prompts(f, wh) == train + test


def sql(wh: Path, query: str) -> list[dict]:
    return query_rows(wh, query)


def raw(wh: Path, table: str) -> list[dict]:
    """Every row of every file of a table (no dedup), schema files excluded."""
    rows: list[dict] = []
    for f in sorted((wh / "tables" / table).glob("run-*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def bake_args(*extra: str) -> list[str]:
    return [
        "bake",
        "--model",
        "tiny-random",
        "--suite",
        "vowels",
        "--name",
        "t",
        "--max-new-tokens",
        "8",
        "--eval-n",
        "4",
        "--learning-rate",
        "1e-3",
        # Four held-out prompts cannot show a significant gain, and these tests are about
        # the plumbing: ask the gate only that the child is not worse by 100 points.
        "--min-gain=-1",
        "--max-family-drop",
        "1",
        # k bare draws per prompt through the sharded sample flow: these tests are about its
        # shards and kill -9 resume (the search is tested in tests/flows/test_search_bake.py).
        "--search",
        "plain",
        *extra,
    ]


def test_bake_two_rounds_child_runs_artifacts_and_counts(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=8, test=4)
    r = run_cli(
        *bake_args("--rounds", "2", "--n", "4", "--shard-prompts", "3", "--max-steps", "3"),
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    bake = prefect_api.run_id_from(r.stdout)
    assert prefect_api.flow_run(bake).flow == "bake"
    assert prefect_api.flow_run(bake).state == "Completed"
    assert prefect_api.flow_run(bake).name == "bake t tiny-random vowels rounds=2"

    stages = prefect_api.children(bake)
    per_round = ["sample", "verify", "select", "train-rsft", "eval", "eval", "promote"]
    assert [s.flow for s in stages] == per_round * 2 + ["report"]
    # Each run's name says what ran, so the UI's run list reads without opening runs.
    assert [s.name for s in stages[:7]] + [stages[-1].name] == [
        "sample tiny-random vowels/train n=4",
        "verify tiny-random vowels/train",
        "select tiny-random vowels/train all",
        "train-rsft tiny-random vowels out=t-r1",
        "eval tiny-random vowels/test n=4",
        "eval t-r1 vowels/test n=4",
        "promote t-r1 parent=tiny-random",
        "report t-r2 base=tiny-random",
    ]
    assert {s.state for s in stages} == {"Completed"}
    # 8 prompts in shards of 3: three shard tasks, each a task run of the sample flow.
    assert prefect_api.task_runs(stages[0].id) == [("sample-shard", "Completed")] * 3

    sample_art = prefect_api.artifacts(stages[0].id)
    assert sample_art["sample-progress"] == ("progress", 100.0)
    assert "**32** written by 3 shard(s)" in sample_art["sample-summary"][1]
    # Verify, train and eval are each one task run of their stage's flow run, with a
    # progress artifact; the other stages run in their flow run.
    assert [prefect_api.task_runs(s.id) for s in stages[1:7]] == [
        [("verify", "Completed")],
        [],
        [("train-rsft", "Completed")],
        [("eval", "Completed")],
        [("eval", "Completed")],
        [],
    ]
    verify_art = prefect_api.artifacts(stages[1].id)
    assert sum(row["verified"] for row in verify_art["verify-families"][1]) == 32
    assert verify_art["verify-progress"] == ("progress", 100.0)
    # The task's own lines are in its flow run's Logs, through the task run's logger.
    verify_log = prefect_api.logs(stages[1].id)
    assert "32 samples: 0 already verified, 32 verdicts written" in "\n".join(verify_log)
    assert "## RSFT selection" in prefect_api.artifacts(stages[2].id)["selection-summary"][1]
    # A stage's own output is in its run's Logs, line by line, as the terminal showed it.
    select_log = prefect_api.logs(stages[2].id)
    assert any(line.startswith("8 prompts: ") and " targets " in line for line in select_log)
    assert any(line.startswith("selection sel-") for line in select_log), select_log
    train_art = prefect_api.artifacts(stages[3].id)
    assert "t-r1" in train_art["training-summary"][1]
    # Training shows its loss per logged step as it goes: a progress artifact and log lines.
    assert train_art["training-progress"] == ("progress", 100.0)
    steps = [line for line in prefect_api.logs(stages[3].id) if line.startswith("step ")]
    assert [s.split(":")[0] for s in steps] == ["step 1/3", "step 2/3", "step 3/3"]
    eval_art = prefect_api.artifacts(stages[4].id)
    assert eval_art["eval-progress"] == ("progress", 100.0)
    eval_rows = eval_art["eval-pass-at-k"][1]
    assert {(x["family"], x["k"]) for x in eval_rows} == {
        (f, k) for f in ("all", "alpha", "beta") for k in (1, 4)
    }
    assert "PROMOTED" in prefect_api.artifacts(stages[6].id)["promotion-decision"][1]
    bake_art = prefect_api.artifacts(bake)
    assert "base **tiny-random** → final **t-r2** after 2 round(s)" in bake_art["bake-summary"][1]
    assert bake_art["bake-plot-pass-at-k"][0] == "image"
    assert bake_art["bake-plot-pass-at-k"][1].startswith("data:image/png;base64,")
    assert {x["model"] for x in bake_art["bake-pass-at-k"][1]} == {"t-r1", "t-r2"}

    # Round 2 sampled from the promoted round-1 model.
    counts = {
        (x["model"], x["split"]): x["n"]
        for x in sql(
            wh,
            "SELECT m.name AS model, p.split, count(*) AS n FROM samples s "
            "JOIN models m USING (model_id) JOIN prompts p USING (prompt_id) GROUP BY ALL",
        )
    }
    assert counts == {
        ("tiny-random", "train"): 32,
        ("tiny-random", "test"): 16,
        ("t-r1", "train"): 32,
        ("t-r1", "test"): 16,
        ("t-r2", "test"): 16,
    }
    assert sql(wh, "SELECT count(*) AS n FROM verdicts")[0]["n"] == 112
    jobs = sql(wh, "SELECT status FROM training_jobs")
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    # Each round trained on exactly the selection its select stage stored.
    trained_on = sql(
        wh,
        "SELECT m.name AS model, len(j.sample_ids) AS n FROM training_jobs j "
        "JOIN selections s ON s.sample_ids = j.sample_ids AND s.model_id = j.base_model_id "
        "JOIN models m ON m.model_id = j.base_model_id ORDER BY 1",
    )
    assert [x["model"] for x in trained_on] == ["t-r1", "tiny-random"]
    assert all(x["n"] > 0 for x in trained_on)
    assert sql(wh, "SELECT count(*) AS n FROM evals")[0]["n"] == 6  # 3 models × k ∈ {1, 4}
    promos = sql(
        wh, "SELECT m.name, p.promoted FROM promotions p JOIN models m USING (model_id) ORDER BY 1"
    )
    assert promos == [{"name": "t-r1", "promoted": True}, {"name": "t-r2", "promoted": True}]
    assert (wh / "reports" / "t" / "report.md").is_file()
    # The rounds table: round 2 trained t-r2 from t-r1 (its parent under it).
    assert re.search(r"^\s*2\s+t-r2\s.*\n\s+← t-r1\s", r.stdout, re.M), r.stdout[-2000:]


def _popen(args: list[str], wh: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    return spawn(
        [sys.executable, "-m", "distillery.cli.app", *args, "--warehouse", str(wh)], log, env
    )


def _wait(proc: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the bake ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_bake_survives_kill_9_in_sampling_and_in_training(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=24, test=4)
    args = bake_args(
        "--n", "8", "--shard-prompts", "4", "--max-new-tokens", "24", "--max-steps", "40"
    )
    train_total = 24 * 8

    # 1. kill -9 while the shards are sampling.
    proc = _popen(args, wh, tmp_path / "run1.log")
    _wait(proc, lambda: len(raw(wh, "samples")) >= 16, "sampling had written rows")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(raw(wh, "samples"))
    assert 16 <= first < train_total, "the kill must land mid-sampling"

    # 2. Rerun, and kill -9 once training has started.
    proc = _popen(args, wh, tmp_path / "run2.log")
    _wait(proc, lambda: bool(raw(wh, "training_jobs")), "training started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [j["status"] for j in raw(wh, "training_jobs")] == ["running"]
    assert not (wh / "models" / "t-r1").exists()
    samples = raw(wh, "samples")
    assert len(samples) == train_total  # sampling finished in run 2, nothing twice
    assert len({s["run_id"] for s in samples}) == 2  # the killed run's rows and run 2's

    # 3. Rerun to the end.
    r = run_cli(*args, warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert f"{train_total} already in the warehouse, 0 written" in r.stdout
    bake = prefect_api.run_id_from(r.stdout)
    sample_run = prefect_api.children(bake)[0]
    assert sample_run.flow == "sample"
    assert prefect_api.task_runs(sample_run.id) == []  # no shard left to schedule

    samples = raw(wh, "samples")
    assert len(samples) == train_total + 2 * 4 * 4  # + held-out draws of both models
    assert len({s["sample_id"] for s in samples}) == len(samples)
    assert len({(s["prompt_id"], s["model_id"], s["idx"]) for s in samples}) == len(samples)
    verdicts = raw(wh, "verdicts")
    assert len({(v["sample_id"], v["verifier"], v["verifier_version"]) for v in verdicts}) == len(
        verdicts
    )
    assert len(verdicts) == len(samples)
    # The killed training run and the finished one are the same job (content-hashed id).
    jobs = raw(wh, "training_jobs")
    assert len({j["job_id"] for j in jobs}) == 1
    assert sorted(j["status"] for j in jobs) == ["completed", "running", "running"]
    assert sql(wh, "SELECT name FROM models ORDER BY name") == [
        {"name": "t-r1"},
        {"name": "tiny-random"},
    ]
    assert len(raw(wh, "promotions")) == 1
    statuses = sorted(x["status"] for x in sql(wh, "SELECT status FROM runs WHERE flow = 'bake'"))
    assert statuses == ["completed", "running", "running"]
