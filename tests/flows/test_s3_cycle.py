"""A sample → verify → eval cycle with the warehouse on object storage: `s3://bucket/prefix`
on a real S3-compatible server (moto's, started by the `s3_server` fixture), the stages run
through the CLI as a user runs them, two `sample` commands writing at once.

Exact row counts: each sample run's rows and the total, a verdict for every sample and no
more, the eval's draws, verdicts and rows; nothing written twice, every object a final
Parquet file, and nothing of the warehouse on the local disk.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from distillery.warehouse.catalog_duckdb import files_sql
from distillery.warehouse.store import Warehouse
from distillery.warehouse.writer_parquet import TMP_SUFFIX
from tests.conftest import ROOT, run_cli
from tests.stages import load_prompts

pytestmark = pytest.mark.e2e

SUITE = "tiny"
PROMPTS = 3  # per split
N = 2  # draws per prompt, in `sample` and in `eval`
SEEDS = (1, 2)  # one per writer: their sample ids differ, so each run's rows are its own
DECODE = ("--model", "tiny-random", "--suite", SUITE, "--n", str(N), "--max-new-tokens", "8")


def _suite(tmp_path: Path) -> Path:
    f = tmp_path / f"{SUITE}.jsonl"  # the suite is named after the file
    rows = [
        {
            "prompt": f"{split} question {i}?",
            "family": "alpha" if i % 2 else "beta",
            "split": split,
            "verifier": {"kind": "answer", "expected": "ok", "strict": True},
        }
        for split in ("train", "test")
        for i in range(PROMPTS)
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


def _cli(*args: str, process: bool = False):
    r = run_cli(*args, process=process)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_sample_verify_eval_on_s3_with_two_writers(tmp_path, bucket, server):
    # `server` first starts the session's Prefect server: the two writer threads below
    # would otherwise both start one (`run_cli` starts it on first use, unlocked).
    url = f"s3://{bucket}/team/wh"
    # Prepared in-process, through the form every stage hands the location on in.
    assert load_prompts(_suite(tmp_path), Path(url)) == 2 * PROMPTS

    per_run = PROMPTS * N
    with ThreadPoolExecutor(len(SEEDS)) as pool:
        writers = [
            pool.submit(
                # Two writers at once: two processes, as two users' commands would be.
                _cli,
                "sample",
                *DECODE,
                "--split",
                "train",
                "--seed",
                str(s),
                "--warehouse",
                url,
                process=True,
            )
            for s in SEEDS
        ]
        said = f"{PROMPTS} prompts × n={N} = {per_run} samples: 0 already in the warehouse, "
        for w in writers:
            assert said + f"{per_run} written" in w.result().stdout

    sampled = per_run * len(SEEDS)
    r = _cli("verify", "--warehouse", url)
    assert f"{sampled} samples: 0 already verified, {sampled} verdicts written" in r.stdout

    _cli("eval", *DECODE, "--split", "test", "--k", f"1,{N}", "--seed", "3", "--warehouse", url)

    wh = Warehouse.open_existing(url)

    def count(sql: str) -> int:
        return wh.query(sql)[0][0]

    def raw(table: str) -> int:
        return count(f"SELECT count(*) FROM {files_sql(wh.root, table)}")

    runs = wh.query("SELECT flow, status, count(*) FROM runs GROUP BY 1, 2 ORDER BY 1")
    assert runs == [
        ("eval", "completed", 1),
        ("prompts-load", "completed", 1),
        ("sample", "completed", len(SEEDS)),
        ("verify", "completed", 1),
    ]
    by_flow = wh.query(
        "SELECT r.flow, p.split, s.seed, count(*) FROM samples s JOIN runs r USING (run_id) "
        "JOIN prompts p USING (prompt_id) GROUP BY ALL ORDER BY ALL"
    )
    assert by_flow == [
        ("eval", "test", 3, per_run),
        *(("sample", "train", s, per_run) for s in SEEDS),
    ]
    total = sampled + per_run  # the eval's draws are samples too
    assert count("SELECT count(*) FROM samples") == raw("samples") == total
    # A verdict per sample (verify's for the sampled ones, the eval's for its draws), once.
    assert count("SELECT count(*) FROM verdicts") == raw("verdicts") == total
    assert count("SELECT count(*) FROM samples ANTI JOIN verdicts USING (sample_id)") == 0
    assert count("SELECT count(*) FROM verdicts ANTI JOIN samples USING (sample_id)") == 0
    # One row per k of plain sampling.
    evals = wh.query("SELECT strategy, split, n, k, prompts FROM evals ORDER BY k")
    assert evals == [("sample", "test", N, k, PROMPTS) for k in (1, N)]
    assert raw("evals") == len(evals)
    assert count("SELECT count(*) FROM models") == 1  # tiny-random, registered by each run

    # Every object is a final Parquet file (data or a table's schema file): no temporary.
    keys = wh.location.fs.find(wh.location.key())
    assert keys and all(k.endswith(".parquet") for k in keys), keys
    assert not any(TMP_SUFFIX in k for k in keys), keys
    # Nothing went to a local path spelled like the URL (`s3:/bucket/...` under the cwd).
    assert not (ROOT / "s3:").exists()
    assert not (tmp_path / "s3:").exists()
