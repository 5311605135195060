"""End to end on tiny-random through the CLI: load, sample, lineage, kill -9, resume, SQL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, run_cli
from tests.rows import query_rows
from tests.stages import load_prompts

pytestmark = pytest.mark.e2e

SEEDS_PROMPTS = 1856  # 5 families, both splits (see tests/tasks/test_seeds.py)


def raw_rows(wh: Path, table: str) -> list[dict]:
    """Every row in every file, bypassing the deduplicating views."""
    rows = []
    for f in sorted((wh / "tables" / table).glob("run-*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def test_load_sample_lineage_and_sql(tmp_path):
    wh = tmp_path / "wh"
    r = run_cli("prompts", "load", "seeds", warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert f"{SEEDS_PROMPTS} new, 0 already loaded" in r.stdout
    again = run_cli("prompts", "load", "seeds", warehouse=wh)
    assert f"0 new, {SEEDS_PROMPTS} already loaded" in again.stdout
    assert len(raw_rows(wh, "prompts")) == SEEDS_PROMPTS

    r = run_cli(
        "sample",
        "--model",
        "tiny-random",
        "--suite",
        "seeds",
        "--split",
        "train",
        "--n",
        "3",
        "--per-family",
        "2",
        "--max-new-tokens",
        "8",
        "--seed",
        "7",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    assert "10 prompts × n=3 = 30 samples: 0 already in the warehouse, 30 written" in r.stdout

    r = run_cli(
        "sql",
        "--format",
        "json",
        """
        SELECT p.family, p.split, s.idx, s.seed, s.temperature, s.top_p, s.max_new_tokens,
               s.completion_tokens, s.prompt_tokens, s.latency_s, s.created_at, s.backend,
               m.name AS model, m.trained, m.parent_id, r.flow, r.status, r.parameters
        FROM samples s JOIN prompts p USING (prompt_id) JOIN models m USING (model_id)
        JOIN runs r ON r.run_id = s.run_id ORDER BY p.family, s.prompt_id, s.idx""",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 30
    assert {(x["family"], x["split"]) for x in rows} == {
        (f, "train") for f in ("code", "date", "json", "number", "summary")
    }
    assert sorted({x["idx"] for x in rows}) == [0, 1, 2]
    for x in rows:
        assert (x["seed"], x["temperature"], x["top_p"], x["max_new_tokens"]) == (7, 0.8, 0.95, 8)
        assert 0 <= x["completion_tokens"] <= 8 and x["prompt_tokens"] > 0
        assert x["latency_s"] >= 0 and x["created_at"]
        assert (x["model"], x["trained"], x["parent_id"], x["backend"]) == (
            "tiny-random",
            False,
            None,
            "transformers",
        )
        assert (x["flow"], x["status"]) == ("sample", "completed")
        assert json.loads(x["parameters"])["n"] == 3

    r = run_cli("sql", "--format", "csv", "SELECT count(*) AS n FROM samples", warehouse=wh)
    assert r.stdout.splitlines() == ["n", "30"]
    r = run_cli("sql", warehouse=wh)
    assert r.returncode == 0
    for table in (
        "prompts",
        "models",
        "samples",
        "verdicts",
        "pairs",
        "selections",
        "training_jobs",
        "evals",
        "runs",
    ):
        assert table in r.stdout
    # The catalog file works from plain DuckDB, read-only.
    with duckdb.connect(str(wh / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (30,)

    # Same command again: nothing new, nothing duplicated. A larger k adds only the new indices.
    r = run_cli(
        "sample",
        "--model",
        "tiny-random",
        "--n",
        "3",
        "--per-family",
        "2",
        "--max-new-tokens",
        "8",
        "--seed",
        "7",
        warehouse=wh,
    )
    assert "30 already in the warehouse, 0 written" in r.stdout
    r = run_cli(
        "sample",
        "--model",
        "tiny-random",
        "--n",
        "5",
        "--per-family",
        "2",
        "--max-new-tokens",
        "8",
        "--seed",
        "7",
        warehouse=wh,
    )
    assert "30 already in the warehouse, 20 written" in r.stdout
    assert len(raw_rows(wh, "samples")) == 50


def test_kill_9_mid_run_then_resume_without_duplicates(tmp_path):
    wh = tmp_path / "wh"
    load_prompts("seeds", wh)  # prepared in-process: `sample` and its kill -9 are under test
    args = [
        "sample",
        "--model",
        "tiny-random",
        "--n",
        "4",
        "--per-family",
        "12",
        "--max-new-tokens",
        "48",
        "--batch-rows",
        "8",
        "--warehouse",
        str(wh),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillery.cli.app", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    files = lambda: list((wh / "tables" / "samples").glob("run-*/*.parquet"))  # noqa: E731
    deadline = time.time() + 120
    while len(files()) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = raw_rows(wh, "samples")
    assert 0 < len(before) < 240, "the kill must land mid-run"

    r = run_cli(*args[:-2], warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert f"{len(before)} already in the warehouse, {240 - len(before)} written" in r.stdout
    after = raw_rows(wh, "samples")
    assert len(after) == 240  # every (prompt, index) sampled exactly once across both runs
    assert len({x["sample_id"] for x in after}) == 240
    assert len({(x["prompt_id"], x["idx"]) for x in after}) == 240
    statuses = sorted(
        x["status"] for x in query_rows(wh, "SELECT status FROM runs WHERE flow = 'sample'")
    )
    assert statuses == ["completed", "running"]  # the killed run never got to finish


def test_samples_import(tmp_path):
    wh = tmp_path / "wh"
    load_prompts("humaneval", wh)
    pid = query_rows(wh, "SELECT prompt_id FROM prompts LIMIT 1")[0]["prompt_id"]
    f = tmp_path / "done.jsonl"
    f.write_text(
        "\n".join(json.dumps({"prompt_id": pid, "text": t}) for t in ("a", "b", "a")) + "\n"
    )
    r = run_cli("samples", "import", str(f), "--model-name", "gpt-x", warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert "imported 3 samples for gpt-x (0 already present)" in r.stdout
    r = run_cli("samples", "import", str(f), "--model-name", "gpt-x", warehouse=wh)
    assert "imported 0 samples for gpt-x (3 already present)" in r.stdout
    rows = query_rows(
        wh,
        "SELECT s.idx, s.text, m.source_kind FROM samples s JOIN models m "
        "USING (model_id) ORDER BY idx",
    )
    assert [(x["idx"], x["text"], x["source_kind"]) for x in rows] == [
        (0, "a", "imported"),
        (1, "b", "imported"),
        (2, "a", "imported"),
    ]


def _snapshot(root: Path) -> dict[str, float]:
    if not root.exists():
        return {}
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


# Bad values of a stage's config fail before any flow (tests/cli/test_options.py, in-process);
# these need a warehouse, a model or a flow to find out.
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sample", "--model", "no-such-model", "--suite", "humaneval", "--split", "test"],
            "unknown model 'no-such-model'",
        ),
        (
            ["sample", "--model", "tiny-random", "--suite", "nosuite"],
            "no prompts for suite 'nosuite'",
        ),
        (
            ["sample", "--model", "tiny-random", "--suite", "humaneval", "--split", "train"],
            "suite 'humaneval' has no prompts in split 'train'",
        ),
        (["prompts", "load", "nosuite"], "unknown suite 'nosuite'"),
        (["sql", "--format", "xml", "SELECT 1"], "--format must be table, csv or json"),
        (["sql", "SELECT * FROM nope"], "Table with name nope does not exist"),
        (["samples", "import", "missing.jsonl", "--model-name", "x"], "need an existing .jsonl"),
        (
            ["bake", "--model", "tiny-random", "--runner", "dask", "--dask-workers", "0"],
            "--dask-workers must be at least 1",
        ),
    ],
)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, args, message):
    wh = tmp_path / "wh"
    load_prompts("humaneval", wh)
    before = _snapshot(wh)
    r = run_cli(*args, warehouse=wh)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], r.stderr
    after = _snapshot(wh)
    new = set(after) - set(before)
    # Reading may refresh nothing; a failed command leaves no sample, run or model behind.
    assert not [p for p in new if "/tables/" in p], new


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(
        '{"prompt": "ok", "verifier": {"kind": "style", "max_words": 3}}\n{"prompt": oops}\n'
    )
    r = run_cli("prompts", "load", str(f), warehouse=tmp_path / "wh")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"error: {f}:2: malformed JSON (Expecting value); fix or remove the line"
    )
    assert not (tmp_path / "wh").exists()


def test_unwritable_warehouse(tmp_path):
    r = run_cli("prompts", "load", "humaneval", warehouse=Path("/proc/distillery-wh"))
    assert r.returncode == 1
    assert "cannot write to warehouse directory /proc/distillery-wh" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_models_list_marks_tiny_random_untrained():
    r = run_cli("models", "list")
    assert r.returncode == 0
    line = next(x for x in r.stdout.splitlines() if "tiny-random" in x)
    assert "NO (random weights)" in line and "not a trained model" in line
    assert "smollm2-135m" in r.stdout
