"""Two flows writing one warehouse at once, with SQL readers polling the whole time."""

from __future__ import annotations

import sys
import time

import duckdb
import pytest

from distillery.warehouse.store import Warehouse
from tests.conftest import spawn
from tests.flows.test_bake_flow import load_suite, raw, sql

pytestmark = pytest.mark.e2e


def test_two_sample_flows_and_readers_on_one_warehouse(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=16, test=2)
    logs = [tmp_path / f"flow{seed}.log" for seed in (1, 2)]
    procs = [
        spawn(
            [
                sys.executable,
                "-m",
                "distillery.cli.app",
                "sample",
                "--model",
                "tiny-random",
                "--suite",
                "vowels",
                "--n",
                "4",
                "--max-new-tokens",
                "16",
                "--seed",
                str(seed),
                "--shard-prompts",
                "4",
                "--warehouse",
                str(wh),
            ],
            log,
        )
        for seed, log in zip((1, 2), logs, strict=True)
    ]
    seen_catalog: list[int] = []
    seen_private: list[int] = []
    deadline = time.time() + 300
    # Readers the whole time: the DuckDB CLI's way (catalog.duckdb, read-only) and the
    # warehouse's own in-memory connection. Any error fails the test.
    while any(p.poll() is None for p in procs):
        assert time.time() < deadline, "the flows did not finish"
        with duckdb.connect(str(wh / "catalog.duckdb"), read_only=True) as con:
            seen_catalog.append(con.execute("SELECT count(*) FROM samples").fetchone()[0])
        seen_private.append(Warehouse(wh).query("SELECT count(*) FROM samples")[0][0])
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log.read_text()[-3000:]
        assert "lock" not in log.read_text().lower()
    assert len(seen_catalog) >= 3, "the readers must have run while the flows wrote"
    for seen in (seen_catalog, seen_private):
        assert seen == sorted(seen)  # whole files only: a count never goes back
        assert seen[0] >= 0 and seen[-1] <= 128
    samples = raw(wh, "samples")
    assert len(samples) == 2 * 16 * 4
    assert len({s["sample_id"] for s in samples}) == 128
    by_seed = sql(wh, "SELECT seed, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1")
    assert by_seed == [{"seed": 1, "n": 64}, {"seed": 2, "n": 64}]
    runs = sql(wh, "SELECT status FROM runs WHERE flow = 'sample'")
    assert [r["status"] for r in runs] == ["completed", "completed"]
