"""A `runs` row per command or flow: written when it starts and again when it ends."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from distillery.warehouse.ids import canonical_json, event_id
from distillery.warehouse.records import RunRecord, utcnow
from distillery.warehouse.store import Warehouse


@cache
def code_version() -> str:
    try:
        version = metadata.version("distillery")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+{sha}" if sha else version


@contextmanager
def recorded_run(wh: Warehouse, flow: str, parameters: dict[str, Any]) -> Iterator[str]:
    """Yield a fresh run_id; the run ends `completed`, or `failed` with the error's text."""
    start = RunRecord(
        run_id=event_id("run"),
        flow=flow,
        parameters=canonical_json(parameters),
        code_version=code_version(),
        started_at=utcnow(),
        ended_at=None,
        status="running",
        error=None,
    )
    wh.write([start])
    try:
        yield start.run_id
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        wh.write(
            [replace(start, ended_at=utcnow(), status="failed", error=error, created_at=utcnow())]
        )
        raise
    wh.write([replace(start, ended_at=utcnow(), status="completed", created_at=utcnow())])
