"""Sampling shards beyond one process: two process workers of a Prefect work pool (deployed
from the repository's prefect.yaml), and a local Dask cluster through prefect-dask."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ROOT, run_cli, spawn
from tests.flows import prefect_api
from tests.flows.test_bake_flow import load_suite, raw

pytestmark = pytest.mark.e2e

PREFECT = [sys.executable, "-m", "prefect"]
SUBMITTED = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
# Two workers polling one pool can both pick up a scheduled run; the server lets only one of
# them move it to Pending and the other logs that it aborted its submission.
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")


def _prefect(*args: str, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(
        [*PREFECT, *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _exactly_once(wh, expected: int) -> None:
    samples = raw(wh, "samples")
    assert len(samples) == expected
    assert len({s["sample_id"] for s in samples}) == expected


def test_shards_on_two_process_workers_of_a_work_pool(tmp_path, server):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=8, test=2)
    pool = f"test-{uuid.uuid4().hex[:8]}"
    _prefect("work-pool", "create", pool, "--type", "process")
    env = {**os.environ, "DISTILLERY_HOME": str(ROOT), "DISTILLERY_WAREHOUSE": str(wh)}
    # The deployment comes from prefect.yaml, as a user would make it.
    _prefect(
        "--no-prompt",
        "deploy",
        "--prefect-file",
        "prefect.yaml",
        "--name",
        "pool",
        "--pool",
        pool,
        env=env,
    )
    workers = []
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    try:
        for log in logs:
            # --limit 1: a worker takes one shard at a time, so both get work.
            cmd = [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"]
            cmd += ["--limit", "1"]
            workers.append(spawn(cmd, log, {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}))
        # Both workers ask for runs before the shards exist. (A worker still starting while
        # the first finished its shard could have taken both.)
        deadline = time.monotonic() + 180
        while len(prefect_api.workers(pool)) < 2:
            assert all(w.poll() is None for w in workers), logs[0].read_text()[-3000:]
            assert time.monotonic() < deadline, "the pool's workers never reported"
            time.sleep(0.5)
        # Two workers polling in step both pick up the first shard and one loses it to the
        # other (Prefect: "Aborted submission"); the loser has then been seen to miss the
        # second shard as well, leaving both to one worker. That race is Prefect's, not the
        # product's, so the second worker is paused until the first has taken a shard: at
        # its limit of 1 the first cannot take the other shard, which only the second can.
        with ThreadPoolExecutor(1) as one:
            os.killpg(workers[1].pid, signal.SIGSTOP)
            try:
                sampling = one.submit(
                    run_cli,
                    "sample",
                    "--model",
                    "tiny-random",
                    "--suite",
                    "vowels",
                    "--n",
                    "4",
                    "--max-new-tokens",
                    "8",
                    "--shard-prompts",
                    "4",  # two shards: one per worker, each flow run a process of its own
                    "--shard-deployment",
                    "sample-shard/pool",
                    warehouse=wh,
                    process=True,  # the flow, its shards and the workers: each a process
                )
                deadline = time.monotonic() + 300
                while not SUBMITTED.search(logs[0].read_text()):
                    assert not sampling.done(), sampling.result().stderr[-3000:]
                    assert time.monotonic() < deadline, "the first worker never took a shard"
                    time.sleep(0.2)
            finally:
                # Resumed whatever happened, or a failure here would wait out the sampling.
                os.killpg(workers[1].pid, signal.SIGCONT)
            r = sampling.result()
        assert r.returncode == 0, r.stderr
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            # A worker's own shutdown is not under test (its shards are done and their logs
            # written); on a loaded 2-core host it has taken over a minute to leave after
            # SIGTERM, so it gets a few seconds and is then killed.
            try:
                w.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(timeout=60)
    shards = prefect_api.children(prefect_api.run_id_from(r.stdout))
    assert [(s.flow, s.state) for s in shards] == [("sample-shard", "Completed")] * 2
    texts = [log.read_text() for log in logs]
    taken = [set(SUBMITTED.findall(t)) - set(ABORTED.findall(t)) for t in texts]
    assert all(taken), f"each worker must run a shard: {taken}"
    assert taken[0] | taken[1] == {str(s.id) for s in shards}
    assert not taken[0] & taken[1]
    _exactly_once(wh, 8 * 4)


def test_shards_on_a_local_dask_cluster(tmp_path):
    wh = tmp_path / "wh"
    load_suite(tmp_path, wh, train=8, test=2)
    r = run_cli(
        "sample",
        "--model",
        "tiny-random",
        "--suite",
        "vowels",
        "--n",
        "4",
        "--max-new-tokens",
        "8",
        "--shard-prompts",
        "2",
        "--runner",
        "dask",
        "--dask-workers",
        "2",
        warehouse=wh,
        process=True,  # the flow's process, and the cluster's worker processes
    )
    assert r.returncode == 0, r.stderr
    run = prefect_api.run_id_from(r.stdout)
    assert prefect_api.task_runs(run) == [("sample-shard", "Completed")] * 4
    summary = prefect_api.artifacts(run)["sample-summary"][1]
    # The shards ran in both worker processes of the cluster.
    assert "written by 4 shard(s) in 2 process(es)" in summary, summary
    _exactly_once(wh, 8 * 4)
