"""A process-wide stop request, so Ctrl-C ends drawing within a decode step.

Sampling runs in worker threads (a flow's shards), which a KeyboardInterrupt in the main
thread never reaches: without this they draw on until their shard is done, and the task
runner retries a shard that failed. The command line sets `STOP` on the first Ctrl-C; the
decode loop and the sampling loop check it at every step and batch and raise `Interrupted`,
which no retry takes up. What was written stays: a rerun resumes from it.
"""

from __future__ import annotations

import threading

STOP = threading.Event()


class Interrupted(Exception):
    """Drawing stopped because a stop was requested (Ctrl-C)."""


def stop_requested() -> bool:
    return STOP.is_set()


def check() -> None:
    """Raise `Interrupted` if a stop was requested."""
    if STOP.is_set():
        raise Interrupted("interrupted; rerun the same command to resume")
