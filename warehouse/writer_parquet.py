"""Immutable Parquet files: one uniquely named file per written batch, published atomically.

A file is written under a `.tmp` name, fsynced, then renamed into
`tables/<table>/run_id=<run>/`, so a reader's glob only ever sees whole files and a
`kill -9` leaves at most a `.tmp` file that no view reads. No two writers share a file name,
so any number of processes may write at once without locks.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillery.warehouse.tables import RECORD_TABLE, TABLES, TableSpec

SCHEMA_PARTITION = "run_id=_schema"
TMP_SUFFIX = ".tmp"


def table_dir(root: Path, table: str) -> Path:
    return root / "tables" / table


def to_arrow(spec: TableSpec, rows: Sequence[object]) -> pa.Table:
    columns = {name: [getattr(r, name) for r in rows] for name in spec.columns}
    try:
        return pa.Table.from_pydict(columns, schema=spec.schema)
    except UnicodeEncodeError:
        # Lone surrogates (from a decoded completion, an exception message) are not UTF-8:
        # store U+FFFD for them. Only on this path, so valid text costs nothing extra.
        for name, values in columns.items():
            columns[name] = [_valid_utf8(v) for v in values]
        return pa.Table.from_pydict(columns, schema=spec.schema)


def _valid_utf8(value: object) -> object:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Through UTF-16 a surrogate pair still becomes its character; a lone one, U+FFFD.
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return value
    if isinstance(value, list):
        return [_valid_utf8(v) for v in value]
    return value


def _publish(table: pa.Table, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def write_records(root: Path, rows: Sequence[object]) -> list[Path]:
    """Write records (of one or several tables) as one new file per (table, run)."""
    groups: dict[tuple[str, str], list[object]] = defaultdict(list)
    for row in rows:
        if not dataclasses.is_dataclass(row) or type(row) not in RECORD_TABLE:
            raise TypeError(f"not a warehouse record: {type(row).__name__}")
        groups[(RECORD_TABLE[type(row)], row.run_id)].append(row)  # type: ignore[attr-defined]
    written = []
    for (table, run_id), group in groups.items():
        spec = TABLES[table]
        # Time first so a directory listing is in write order; uuid so names never collide.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
        final = table_dir(root, table) / f"run_id={run_id}" / name
        _publish(to_arrow(spec, group), final)
        written.append(final)
    return written


def ensure_schema_files(root: Path) -> None:
    """An empty file per table, so views have their columns before the first row exists."""
    for spec in TABLES.values():
        path = table_dir(root, spec.name) / SCHEMA_PARTITION / "schema.parquet"
        if path.exists():
            try:
                if pq.read_schema(path).equals(spec.schema):
                    continue
            except (OSError, pa.ArrowInvalid):
                pass  # a torn or foreign file: rewrite it
        _publish(spec.schema.empty_table(), path)


def sweep_tmp(root: Path, older_than_s: float = 3600.0) -> int:
    """Remove `.tmp` files left by killed writers; young ones may belong to a live writer."""
    removed = 0
    cutoff = time.time() - older_than_s
    for tmp in (root / "tables").glob(f"*/*/*{TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def rows_in_run(root: Path, table: str, run_id: str) -> int:
    """Rows one run has written to a table so far, from the files' footers (no scan)."""
    directory = table_dir(root, table) / f"run_id={run_id}"
    return sum(pq.read_metadata(f).num_rows for f in directory.glob("*.parquet"))
