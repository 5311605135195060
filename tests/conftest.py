"""Shared fixtures: a fresh warehouse per test and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse.open(tmp_path / "wh")


def run_cli(
    *args: str, warehouse: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`distillery ARGS` in a child process, the way a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    env["COLUMNS"] = "200"  # rich wraps narrow terminals; keep tables on one line
    cmd = [sys.executable, "-m", "flows.cli", *args]
    if warehouse is not None:
        cmd += ["--warehouse", str(warehouse)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli():
    return run_cli
