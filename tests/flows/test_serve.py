"""`distillery serve` registers scheduled (nightly sampling, daily compaction, weekly bake)
and on-demand deployments and runs what the server asks of it; prefect.yaml names real
flows with parameters they take."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import ROOT, spawn
from tests.flows.test_bake_flow import sql

pytestmark = pytest.mark.e2e

STAGES = {
    "prompts-load",
    "sample",
    "search",
    "verify",
    "select",
    "pairs",
    "train-rsft",
    "train-dpo",
    "eval",
    "promote",
    "report",
    "bake",
    "sample-shard",
    "samples-import",
}


def _deployments() -> dict[str, object]:
    with get_client(sync_client=True) as c:
        flows = {f.id: f.name for f in c.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": d for d in c.read_deployments()}


def test_serve_schedules_and_runs_on_demand(tmp_path):
    wh = tmp_path / "wh"
    proc = spawn(
        [
            sys.executable,
            "-m",
            "distillery.cli.app",
            "serve",
            "--paused",
            "--nightly",
            "15 1 * * *",
            "--model",
            "tiny-random",
            "--warehouse",
            str(wh),
        ],
        tmp_path / "serve.log",
        # The served process asks for runs every second, not Prefect's 10: the UI's "run"
        # below is picked up at once instead of up to 10 s later.
        {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
    )
    try:
        deadline = time.time() + 180
        scheduled = {"sample-and-verify/nightly", "bake/weekly", "compact/daily"}
        while not scheduled <= set(_deployments()):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.time() < deadline, "serve registered no deployments"
            time.sleep(0.5)
        while not {f"{s}/on-demand" for s in STAGES} <= set(_deployments()):
            assert time.time() < deadline
            time.sleep(0.5)
        found = _deployments()
        nightly, weekly = found["sample-and-verify/nightly"], found["bake/weekly"]
        daily = found["compact/daily"]
        assert [s.schedule.cron for s in nightly.schedules] == ["15 1 * * *"]
        assert [s.schedule.cron for s in weekly.schedules] == ["0 4 * * 0"]
        assert [s.schedule.cron for s in daily.schedules] == ["0 3 * * *"]
        # --paused: nothing fires until resumed
        assert nightly.paused and weekly.paused and daily.paused
        assert daily.parameters == {"warehouse": str(wh.resolve())}
        assert nightly.parameters == {
            "warehouse": str(wh.resolve()),
            "config": {"model": "tiny-random", "suite": "seeds", "n": 8},
        }
        # The UI's "run" button: the served process picks the run up and executes it.
        run = run_deployment(
            "prompts-load/on-demand", parameters={"source": "seeds"}, timeout=180, poll_interval=1
        )
        assert run.state is not None and run.state.is_completed(), run.state
        families = sql(wh, "SELECT family, count(*) AS n FROM prompts GROUP BY 1 ORDER BY 1")
        assert [f["family"] for f in families] == ["code", "date", "json", "number", "summary"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_prefect_yaml_entrypoints_are_flows_taking_those_parameters():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    seen = []
    for d in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(d.get("parameters", {})) <= accepted, d["name"]
        seen.append(f"{flow.name}/{d['name']}")
    assert seen == [
        "bake/weekly",
        "sample-and-verify/nightly",
        "sample-shard/pool",
        "search/workers",
        "verify/workers",
        "train-rsft/workers",
        "train-dpo/workers",
        "eval/workers",
    ]


def test_serve_without_a_server_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # a profile with no API URL either
    r = subprocess.run(
        [sys.executable, "-m", "distillery.cli.app", "serve", "--warehouse", str(tmp_path / "wh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: serve needs a Prefect server that outlives it: run `prefect server start` "
        "and export PREFECT_API_URL=http://127.0.0.1:4200/api"
    ]
    assert not (tmp_path / "wh").exists()


def test_a_bucket_gets_no_daily_compaction_and_its_url_as_it_is(tmp_path):
    """Compaction refuses object storage, so serving a bucket schedules none (it would fail
    every night); every deployment's warehouse is the URL, not a path made of it."""
    from distillery.flows.serve import Schedules, deployments

    def described(warehouse: str) -> dict[str, dict]:
        made = deployments(Schedules(model="tiny-random"), warehouse)
        return {f"{d.flow_name}/{d.name}": d.parameters for d in made}

    local = described(str(tmp_path / "wh"))
    remote = described("s3://bucket/team/wh")
    assert set(local) - set(remote) == {"compact/daily"}
    assert set(remote) <= set(local) and len(remote) == len(local) - 1
    assert {p.get("warehouse") for p in remote.values()} == {"s3://bucket/team/wh", None}
    assert local["compact/daily"]["warehouse"] == str((tmp_path / "wh").resolve())
