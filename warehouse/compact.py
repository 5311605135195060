"""Merge each run folder's small Parquet files into one (`distillery compact`).

The writer leaves one file per written batch, and every query lists, opens and plans each
file of the tables it reads: a million rows in thousands of files makes every query slow.
`compact` rewrites each run folder holding two data files or more as one file, with row
groups of DuckDB's size so that a query still scans it on every core.

Safe beside writers and readers, and to kill at any point:

- Only the files listed as it starts are merged and removed; a file a writer publishes
  into a folder meanwhile is left for the next compaction, as are the `_schema` folder,
  `.tmp` files and folders of the former layout (`Warehouse.open` moves those).
- The merged file is published like a written batch (a temporary file, fsynced, renamed
  in), under a writer's file name, before any file it replaces is removed: whenever the
  process dies, every row is in a file the views read. Rows that the merged file and a
  file it replaces both hold meanwhile read once through the views (each deduplicates by
  key; only `raw_*` show every copy, as they say), `rows_in_run` counts them once (the
  merged file names what it replaces), and a later compaction drops the copies (rows of
  a folder with the same key and `created_at`: the same write).
- A folder's files are removed `grace_s` after its merged file was published (while
  the next folders are merged), so that a reader listing the folder meanwhile sees
  those files or the merged one, never neither. A reader that listed a removed file
  before opening it runs its query again (`read_retry.py`).
- One compaction at a time per warehouse: an `flock` on `.compact.lock` at its root. A
  second one does not wait (unless `wait=True`): it returns at once, `busy`, having done
  nothing, so a scheduled run that lands on a manual one costs nothing.

A warehouse on object storage is refused (`WarehouseError`, before anything is read): the
lock above is a local file, which does not keep a compaction on another machine out, and
two compactions of one folder would each publish a merged file of the same rows.

After the merges, a compaction of prompts, samples or verdicts writes a roll-up of them
(`rollup_build.py`; what it answers and why that is exact: `rollup.py`).

Each merged file keeps every column its sources had, a renamed column's former name
included (`TableSpec.renamed`), and each row as it was written (its `run_id` and
`created_at` too), so the views read it exactly as they read the files it replaces. It is
written as it is read, one source file at a time: memory holds a row group, one source
file and the folder's key columns, not the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from distillery.warehouse import rollup_build
from distillery.warehouse.errors import WarehouseError
from distillery.warehouse.location import parse
from distillery.warehouse.rollup import COVERED_TABLES, Snapshot
from distillery.warehouse.store import Warehouse
from distillery.warehouse.tables import TABLES, TableSpec
from distillery.warehouse.writer_parquet import (
    COMPACTED_FROM,
    LEGACY_PREFIX,
    data_file_name,
    publish,
    table_dir,
)

LOCK_FILE = ".compact.lock"
# DuckDB's row group size: it scans a file's row groups in parallel, one per thread.
ROW_GROUP_ROWS = 122_880
# Far longer than a reader takes to list a run folder, even one of thousands of files.
GRACE_S = 1.0
_POSITION = "__distillery_position"
# Source files read at once on threads, and read ahead of the writer.
READERS = min(8, os.cpu_count() or 1)
READ_AHEAD = 64

T = TypeVar("T")

# (table, folders merged so far, folders to merge)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TableCompaction:
    table: str
    files_before: int  # data files listed, over all run folders
    files_after: int  # of those, what is left: one per run folder
    rows: int  # rows in the table's files after, copies dropped
    folders_merged: int
    copies_dropped: int  # rows left twice by a compaction killed before its removals
    skipped: tuple[str, ...] = ()  # "<run folder>: why", folders left as they were


@dataclass(frozen=True)
class CompactReport:
    root: Path
    tables: tuple[TableCompaction, ...]
    seconds: float
    busy: bool = False  # another compaction held the lock: nothing was done
    # The roll-up written after the merges (`rollup.py`), when prompts, samples or verdicts
    # were compacted.
    rollup: Snapshot | None = None

    @property
    def files_before(self) -> int:
        return sum(t.files_before for t in self.tables)

    @property
    def files_after(self) -> int:
        return sum(t.files_after for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class _Folder:
    path: Path
    files: tuple[Path, ...]  # as listed, in name (write) order


@dataclass(frozen=True)
class _Merged:
    rows: int
    dropped: int


class _Skip(Exception):
    """A run folder that cannot be merged as it is; the message says why."""


def unknown_tables(names: Sequence[str]) -> list[str]:
    return [n for n in names if n not in TABLES]


def compact(
    root: Path,
    tables: Sequence[str] | None = None,
    *,
    wait: bool = False,
    grace_s: float = GRACE_S,
    progress: Progress | None = None,
) -> CompactReport:
    """Merge the data files of every run folder of `tables` (all by default) that holds
    two or more; see the module docstring for what makes it safe."""
    names = list(TABLES) if tables is None else list(dict.fromkeys(tables))
    unknown = unknown_tables(names)
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    location = parse(root)
    if not location.is_local:
        raise WarehouseError(
            f"cannot compact {location.url}: compaction needs a local warehouse directory "
            f"(object storage has no lock to keep two compactions apart); nothing was done"
        )
    root = Warehouse.open_existing(root).root  # a clear error for a directory without one
    start = time.perf_counter()
    with _exclusive(root, wait) as held:
        if not held:
            return CompactReport(root, (), 0.0, busy=True)
        listed = {name: _list(root, name) for name in names}
        total = sum(len(f.files) >= 2 for folders in listed.values() for f in folders)
        done = 0

        def tick(table: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(table, done, total)

        removals = _Removals(grace_s)
        results = tuple(
            _compact_table(root, TABLES[name], folders, removals, tick)
            for name, folders in listed.items()
        )
        removals.drain()
        snapshot = None
        if set(names) & set(COVERED_TABLES):
            if progress is not None:
                progress("roll-up", done, total)
            snapshot = rollup_build.build(root)
    return CompactReport(root, results, time.perf_counter() - start, rollup=snapshot)


def _compact_table(
    root: Path,
    spec: TableSpec,
    folders: Sequence[_Folder],
    removals: _Removals,
    tick: Callable[[str], None],
) -> TableCompaction:
    rows = dropped = merged_folders = files_after = 0
    skipped: list[str] = []
    for folder in folders:
        if len(folder.files) < 2:
            rows += _footer_rows(folder.files)
            files_after += len(folder.files)
            continue
        try:
            merged = _merge(root, spec, folder)
        except _Skip as why:
            skipped.append(f"{folder.path.name}: {why}")
            rows += _footer_rows(folder.files)
            files_after += len(folder.files)
        else:
            rows += merged.rows
            dropped += merged.dropped
            merged_folders += 1
            files_after += 1
            removals.add(folder.files)
        tick(spec.name)
    files_before = sum(len(f.files) for f in folders)
    return TableCompaction(
        spec.name, files_before, files_after, rows, merged_folders, dropped, tuple(skipped)
    )


class _Removals:
    """The files merged files replace, each folder's removed `grace_s` after its merged
    file was published: a reader listing the folder meanwhile sees one or the other."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.pending: deque[tuple[float, Sequence[Path]]] = deque()

    def add(self, files: Sequence[Path]) -> None:
        self.pending.append((time.monotonic() + self.grace_s, files))
        self.due()

    def due(self) -> None:
        while self.pending and self.pending[0][0] <= time.monotonic():
            remove_sources(self.pending.popleft()[1])

    def drain(self) -> None:
        while self.pending:
            time.sleep(max(0.0, self.pending[0][0] - time.monotonic()))
            self.due()


def remove_sources(paths: Sequence[Path]) -> None:
    """Remove the files merged files replace (only once those are published)."""
    for path in paths:
        path.unlink(missing_ok=True)


@contextmanager
def _exclusive(root: Path, wait: bool) -> Iterator[bool]:
    """Whether this process holds the warehouse's compaction lock, for the block's length.
    The kernel drops the lock with the process, so a killed compaction never leaves it."""
    with open(root / LOCK_FILE, "ab") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _list(root: Path, table: str) -> list[_Folder]:
    directory = table_dir(root, table)
    if not directory.is_dir():
        return []
    folders = []
    for path in sorted(directory.iterdir()):
        # `_schema/` holds no row; `run_id=<run>/` is the former layout, moved elsewhere.
        if not path.is_dir() or path.name[0] in "._" or path.name.startswith(LEGACY_PREFIX):
            continue
        folders.append(_Folder(path, tuple(sorted(path.glob("*.parquet")))))
    return folders


def _footer_rows(files: Sequence[Path]) -> int:
    rows = 0
    for f in files:
        # Gone (not by this process), or not a file the writer made: nothing to count.
        with contextlib.suppress(OSError, pa.ArrowInvalid):
            rows += pq.read_metadata(f).num_rows
    return rows


def _merge(root: Path, spec: TableSpec, folder: _Folder) -> _Merged:
    """Publish one file holding the rows of `folder.files`, copies dropped; removes none."""
    # A file gone (not by this process: it holds the lock), unreadable or of a clashing
    # type leaves the folder as it is, said in the report; nothing is published for it.
    unmergeable = (pa.ArrowInvalid, pa.ArrowTypeError, OSError)
    try:
        schemas, keys = _footers_and_keys(spec, folder.files)
        schema = _merged_schema(spec, schemas)
        keep = _first_copies(spec, keys)
    except unmergeable as exc:
        raise _Skip(str(exc).splitlines()[0]) from None
    # In the file's key-value metadata only, not the Arrow schema's: no reader carries it.
    replaces = {COMPACTED_FROM: json.dumps([f.name for f in folder.files])}

    def write(fh: BinaryIO) -> None:
        with pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            groups = _RowGroups(writer)
            offset = 0
            for data in _read_ahead(folder.files, _read_all):
                mask = keep[offset : offset + data.num_rows]
                offset += data.num_rows
                if not mask.all():
                    data = data.filter(pa.array(mask))
                groups.add(_conform(data, schema))
            groups.close()
            writer.add_key_value_metadata(replaces)

    try:
        publish(root, folder.path / data_file_name(), write)
    except unmergeable as exc:
        raise _Skip(str(exc).splitlines()[0]) from None
    kept = int(keep.sum())
    return _Merged(kept, len(keep) - kept)


def _merged_schema(spec: TableSpec, schemas: Sequence[pa.Schema]) -> pa.Schema:
    """Every column of every file (a type conflict raises): today's columns first, in the
    record's order, then any other (a renamed column's former name). A column some file
    lacks is nullable, since its rows read as NULL there."""
    unified = pa.unify_schemas([s.remove_metadata() for s in schemas])
    everywhere = set.intersection(*(set(s.names) for s in schemas))
    order = [c for c in spec.columns if c in unified.names]
    order += [c for c in unified.names if c not in order]
    fields = []
    for name in order:
        nullable = name not in everywhere or any(
            s.field(name).nullable for s in schemas if name in s.names
        )
        fields.append(unified.field(name).with_nullable(nullable))
    return pa.schema(fields)


def _read_ahead(files: Sequence[Path], read: Callable[[Path], T]) -> Iterator[T]:
    """`read(f)` of each file, in order, a few files read ahead on other threads (pyarrow
    lets go of the GIL): at thousands of small files, opening them is most of the time.
    At most `READ_AHEAD` files' results are held at once."""
    with ThreadPoolExecutor(READERS) as pool:
        for start in range(0, len(files), READ_AHEAD):
            yield from pool.map(read, files[start : start + READ_AHEAD])


def _read_all(path: Path) -> pa.Table:
    with pq.ParquetFile(path) as source:
        return source.read()


def _footers_and_keys(
    spec: TableSpec, files: Sequence[Path]
) -> tuple[list[pa.Schema], list[pa.Table]]:
    """Each file's schema and its rows' key columns and `created_at`, one open per file."""
    columns = [*spec.key, "created_at"]

    def read(path: Path) -> tuple[pa.Schema, pa.Table]:
        with pq.ParquetFile(path) as source:
            return source.schema_arrow, source.read(columns=columns)

    schemas, keys = [], []
    for schema, key in _read_ahead(files, read):
        schemas.append(schema)
        keys.append(key)
    return schemas, keys


def _first_copies(spec: TableSpec, keys: Sequence[pa.Table]) -> np.ndarray:
    """Per row of the files in order: whether it is the first with its key and `created_at`.

    A row written once has no other; one that a merged file and a file it replaced both
    hold (a compaction killed before its removals) is the same write twice.
    """
    columns = [*spec.key, "created_at"]
    every = pa.concat_tables(keys)
    every = every.append_column(_POSITION, pa.array(np.arange(every.num_rows)))
    first = every.group_by(columns, use_threads=False).aggregate([(_POSITION, "min")])
    keep = np.zeros(every.num_rows, dtype=bool)
    keep[first.column(f"{_POSITION}_min").to_numpy()] = True
    return keep


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` with `schema`'s columns in its order: NULL where `data` lacks one."""
    columns = []
    for field in schema:
        if field.name in data.column_names:
            column = data.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(data.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _RowGroups:
    """Writes rows in groups of `ROW_GROUP_ROWS` however small the pieces added: a
    ParquetWriter makes at least one row group per table it is handed."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self.writer = writer
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, data: pa.Table) -> None:
        self.pending.append(data)
        self.rows += data.num_rows
        if self.rows >= ROW_GROUP_ROWS:
            whole = pa.concat_tables(self.pending)
            full = whole.num_rows - whole.num_rows % ROW_GROUP_ROWS
            self.writer.write_table(whole.slice(0, full), row_group_size=ROW_GROUP_ROWS)
            rest = whole.slice(full)
            self.pending, self.rows = [rest], rest.num_rows

    def close(self) -> None:
        if self.rows:
            whole = pa.concat_tables(self.pending)
            self.writer.write_table(whole, row_group_size=ROW_GROUP_ROWS)
