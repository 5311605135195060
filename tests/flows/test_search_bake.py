"""A bake whose targets come from search (bare draws, a prompted context, validate-and-
retry), through `distillery` on the session's Prefect server, with tiny-random.

The suite's verifier (a vowel somewhere) passes most random text and fails some, so the
search has bare passes, prompted passes and failures to retry. What matters here: the
stages run as flows, every row names its procedure and context, the contexts are in the
warehouse, and every training target is trained against the *bare* prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli
from tests.flows import prefect_api
from tests.flows.test_bake_flow import load_suite, sql

pytestmark = pytest.mark.e2e


def test_a_search_driven_bake_trains_on_search_targets_against_the_bare_prompt(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=6, test=4)
    args = [
        "bake", "--model", "tiny-random", "--suite", "vowels", "--name", "s",
        "--max-new-tokens", "8", "--eval-n", "4", "--learning-rate", "1e-3", "--max-steps", "2",
        "--min-gain=-1", "--max-family-drop", "1",
        "--procedures", "sample,prompted,retry", "--wave", "2", "--budget", "6", "--targets", "2",
    ]  # fmt: skip
    r = run_cli(*args, warehouse=wh)
    assert r.returncode == 0, r.stderr
    bake = prefect_api.run_id_from(r.stdout)
    stages = prefect_api.children(bake)
    assert [s.flow for s in stages] == [
        "search", "verify", "select", "train-rsft", "eval", "eval", "promote", "report",
    ]  # fmt: skip
    summary = prefect_api.artifacts(stages[0].id)["search-summary"][1]
    assert "## Search sample+prompted+retry on vowels/train" in summary

    # Two families, two contexts (no references in this suite: system prompt only).
    ctx = sql(wh, "SELECT family, name, exemplar_ids FROM contexts ORDER BY family")
    assert [(c["family"], c["name"], c["exemplar_ids"]) for c in ctx] == [
        ("alpha", "vowels/alpha/system+0shot", []),
        ("beta", "vowels/beta/system+0shot", []),
    ]
    rows = sql(
        wh,
        "SELECT procedure, context, count(*) AS n, count(*) FILTER (WHERE passed) AS passed "
        "FROM sample_outcomes WHERE split = 'train' GROUP BY ALL ORDER BY ALL",
    )
    by = {(x["procedure"], x["context"]): (x["n"], x["passed"]) for x in rows}
    assert set(by) <= {
        ("sample", None),
        ("retry", None),
        ("prompted", "vowels/alpha/system+0shot"),
        ("prompted", "vowels/beta/system+0shot"),
    }
    # Adaptive k, per prompt: draws come in waves of 2 bare + 2 prompted (no exemplars
    # here), and a prompt stopped only once it had 2 distinct passes or spent its 6.
    per_prompt = sql(
        wh,
        "SELECT prompt_id, count(*) FILTER (WHERE procedure = 'sample') AS bare, "
        "count(*) FILTER (WHERE procedure = 'prompted') AS prompted, "
        "count(*) FILTER (WHERE procedure = 'retry') AS retry, count(*) AS spent, "
        "count(DISTINCT lower(trim(text))) FILTER (WHERE passed) AS passes "
        "FROM sample_outcomes WHERE split = 'train' GROUP BY 1",
    )
    assert len(per_prompt) == 6
    for x in per_prompt:
        assert x["bare"] == x["prompted"] and x["bare"] % 2 == 0, x
        assert x["retry"] <= x["bare"], x  # at most one retry per failed bare draw
        assert x["passes"] >= 2 or x["spent"] >= 6, x
    assert sum(x["bare"] for x in per_prompt) == by[("sample", None)][0]

    # Training took passing answers from whichever procedure found them, as bare-prompt rows.
    (job,) = sql(wh, "SELECT job_id, sample_ids FROM training_jobs")
    targets = sql(
        wh,
        "SELECT s.procedure, s.passed, s.split FROM sample_outcomes s "
        f"WHERE s.sample_id IN ({', '.join(repr(i) for i in job['sample_ids'])})",
    )
    assert targets and all(t["passed"] and t["split"] == "train" for t in targets)
    export = pq.read_table(Path(wh) / "exports" / job["job_id"] / "rsft-train.parquet").to_pylist()
    assert len(export) == len(job["sample_ids"])
    for row in export:
        prompt = row["prompt"] if isinstance(row["prompt"], list) else json.loads(row["prompt"])
        assert [m["role"] for m in prompt] == ["user"]  # no context, no retry turns

    # `distillery search` on the held-out split, then again: the rerun draws nothing new.
    first = run_cli("search", "--model", "tiny-random", "--suite", "vowels", "--split",
                    "test", "--wave", "2", "--budget", "4", "--max-new-tokens", "8",
                    warehouse=wh)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = run_cli("search", "--model", "tiny-random", "--suite", "vowels", "--split",
                    "test", "--wave", "2", "--budget", "4", "--max-new-tokens", "8",
                    warehouse=wh)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert " 0 new completions" in again.stdout


def test_bad_search_input_is_one_line_and_writes_nothing(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=2, test=2)
    before = sorted(p.name for p in (wh / "tables").rglob("*.parquet"))
    missing = str(tmp_path / "no-such-context.json")
    for bad in (
        ["--procedures", "beam"],
        ["--procedures", "retry"],
        ["--budget", "0"],
        ["--context-file", missing],
    ):
        r = run_cli("search", "--model", "tiny-random", "--suite", "vowels", *bad, warehouse=wh)
        assert r.returncode == 1, (bad, r.stdout)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert sorted(p.name for p in (wh / "tables").rglob("*.parquet")) == before
