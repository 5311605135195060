"""Reads that run again when a Parquet file they listed was removed before they opened it.

A compaction (`compact.py`) publishes a merged file, then removes the files merged into it.
A query whose glob listed a removed file fails as DuckDB opens it, with (DuckDB 2.0.1)
`duckdb.IOException: IO Error: Cannot open file "<path>": No such file or directory` (or,
for a file named by its path, `No files found that match the pattern "<path>"`). Run
again, its glob (or a new listing) names the merged file instead and it reads the same rows.
`Warehouse.query`, `arrow` and `existing`, `distillery sql` and `flips` go through
`retry_vanished`; code that takes a cursor itself (`Warehouse.connect`) should too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")

ATTEMPTS = 5
# Doubled after each attempt: 0.05 + 0.1 + 0.2 + 0.4 s at most, far longer than a
# compaction takes between listing a run's files and removing them.
FIRST_PAUSE_S = 0.05
VANISHED = "No such file or directory"
# A file named by its path (a listed delta, `catalog_duckdb.delta_files`) that is gone is
# "No files found that match the pattern "<path>"": DuckDB reads a path as a pattern.
UNMATCHED = re.compile(r'No files found that match the pattern "([^"*?\[]*)"')


def vanished(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB failing to open a file that is no longer there: one a glob
    listed, or one named by its path (a glob that matches nothing is not that)."""
    if not isinstance(exc, duckdb.IOException):
        return False
    return VANISHED in str(exc) or UNMATCHED.search(str(exc)) is not None


def retry_vanished(read: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """`read()`, run again (up to `attempts` times in all) while a file it listed vanished.

    `read` must start from scratch each time (take its own cursor): a read only, so
    running it again changes nothing but its result.
    """
    pause = FIRST_PAUSE_S
    for _ in range(attempts - 1):
        try:
            return read()
        except duckdb.IOException as exc:
            if not vanished(exc):
                raise
        time.sleep(pause)
        pause *= 2
    return read()
