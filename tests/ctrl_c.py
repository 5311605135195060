"""Ctrl-C as a terminal sends it, to a `distillery sample` that is writing: the shared part
of the Ctrl-C tests with a configured server (tests/flows/test_interrupt.py) and with the
local one (tests/flows/test_local_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

SAMPLE = ["sample", "--model", "tiny-random", "--suite", "seeds", "--split", "train"]
SAMPLE += ["--limit", "200", "--n", "4", "--max-new-tokens", "64", "--shard-prompts", "50"]
DRAWS = 800  # 200 prompts x n=4
INTERRUPTED = "interrupted; rerun the same command to resume"


def interrupt_sampling(wh: Path, env: dict[str, str], within_s: float = 5) -> None:
    """Start SAMPLE into `wh`, send SIGINT to its process group once its first file is
    written, and check it ends as Ctrl-C should: exit 130 within `within_s`, the one line
    saying how to resume last, no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillery.cli.app", *SAMPLE, "--warehouse", str(wh)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    files = wh / "tables" / "samples"
    deadline = time.monotonic() + 300
    while not list(files.glob("run-*/*.parquet")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in err and "EventsWorker" not in err
    assert took < within_s, f"Ctrl-C took {took:.1f} s"
