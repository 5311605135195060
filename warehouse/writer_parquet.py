"""Immutable Parquet files: one uniquely named file per written batch, published atomically.

Layout: `tables/<table>/<run>/<time>-<uuid>.parquet`. The folder is named after the run but
is not a hive `key=value` pair: `run_id` is a plain string column in every file, so pandas,
polars, pyarrow.dataset, `datasets` and DuckDB all read a table's folder as it is, with no
partition column inferred beside (and clashing with) the real one.

A file is written under a unique name in `.tmp/` at the warehouse root, fsynced, then renamed
into its run's folder, so a reader (of a folder or a glob) only ever sees whole files and a
`kill -9` leaves at most a `.tmp` file that nothing reads. No two writers share a file name,
so any number of processes may write at once without locks.

`tables/<table>/_schema/schema.parquet` holds the table's schema and no row group: the views
stored in `catalog.duckdb` glob the table's folder, and DuckDB cannot bind a glob that matches
no file, so this file lets a catalog opened before a table's first row see the rows written
after. Readers skip it: pyarrow (pandas) ignores `_` folders, and the others read no row
from it.

Warehouses written before this layout (`tables/<table>/run_id=<run>/`) are still read by the
views (their glob matches both) and are moved to this one by `migrate_legacy_layout`.

On object storage (`location.py`) the layout is the same under the URL's prefix, and each
file is put straight under its final key (`objects.put`): there is no rename, no `.tmp`, and
no former layout to migrate. Functions that take `root` take either kind of location; a
local directory goes through the code below exactly as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from distillery.warehouse import objects
from distillery.warehouse.location import Location, remote
from distillery.warehouse.tables import RECORD_TABLE, TABLES, TableSpec

SCHEMA_DIR = "_schema"
SCHEMA_FILE = "schema.parquet"
TMP_DIR = ".tmp"
TMP_SUFFIX = ".tmp"
# The layout before: hive-style run folders and a schema file with an empty row group.
LEGACY_PREFIX = "run_id="
# Key-value metadata of a merged file (`compact.py`): the names of the files it replaces, a
# JSON list. They stay beside it from its publication until the compaction removes them.
COMPACTED_FROM = "distillery.compacted_from"
COUNT_ATTEMPTS = 5

# A warehouse location: a local directory, or a URL / `Location` on object storage.
Root = Path | str | Location
# What a write returns: each new file's path, or its URL on object storage.
Written = Path | str


def table_dir(root: Path, table: str) -> Path:
    return root / "tables" / table


# The files a table's views read, relative to its folder: each run folder's, the schema
# folder's (`_schema/`) and those of the former layout (`run_id=<run>/`).
TABLE_FILES = "*/*.parquet"


def table_files(root: Path, table: str) -> list[Path]:
    """The files `TABLE_FILES` matches in `table`'s folder under `root`, sorted by path."""
    return sorted(table_dir(root, table).glob(TABLE_FILES), key=str)


def run_folder(run_id: str) -> str:
    """A run's folder name: the run id itself when it is plain (every `run-<hex>` is), else
    percent-encoded, so that it is one path segment, never hidden or `_`-prefixed (which
    readers skip) and never a hive `key=value` pair."""
    if not run_id:
        raise ValueError("a warehouse record needs a non-empty run_id")
    name = quote(run_id, safe="")
    if name[0] in "._~":
        name = f"%{ord(name[0]):02X}{name[1:]}"
    return name


def run_dir(root: Path, table: str, run_id: str) -> Path:
    return table_dir(root, table) / run_folder(run_id)


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


def data_file_name() -> str:
    """A new data file's name: time first so a directory listing is in write order, a uuid
    so that no two names (of any process) collide."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"


def publish(root: Path, final: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through `write` under a temporary name, fsync it, then rename it to
    `final`: readers see the whole file or none of it."""
    # The temporary file lives outside the table folders, where a reader of a folder would
    # meet it: polars refuses a folder holding other extensions, pyarrow reads any name.
    tmp_dir = root / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_records(root: Root, rows: Sequence[object]) -> list[Written]:
    """Write records (of one or several tables) as one new file per (table, run)."""
    groups: dict[tuple[str, str], list[object]] = defaultdict(list)
    for row in rows:
        if not dataclasses.is_dataclass(row) or type(row) not in RECORD_TABLE:
            raise TypeError(f"not a warehouse record: {type(row).__name__}")
        groups[(RECORD_TABLE[type(row)], row.run_id)].append(row)  # type: ignore[attr-defined]
    return [
        _write_file(root, table, run_id, to_arrow(TABLES[table], group))
        for (table, run_id), group in groups.items()
    ]


def _write_file(root: Root, table: str, run_id: str, data: pa.Table) -> Written:
    def write(fh: BinaryIO) -> None:
        pq.write_table(data, fh, compression="zstd")

    location = remote(root)
    if location is not None:
        key = location.key("tables", table, run_folder(run_id), data_file_name())
        return objects.put(location, key, write)
    final = run_dir(Path(root), table, run_id) / data_file_name()
    publish(Path(root), final, write)
    return final


class SchemaMismatch(ValueError):
    """Arrow data that does not fit a table's schema; the message names the column."""


def conform(spec: TableSpec, data: pa.Table) -> pa.Table:
    """`data` as the table's schema: its columns in order and type. A column left out gets
    its record's default (a constant, or `created_at`: now); anything else missing, an
    unknown column, a value that does not cast or a null where none is allowed is an
    error naming the column."""
    unknown = sorted(set(data.column_names) - set(spec.columns))
    if unknown:
        raise SchemaMismatch(f"{spec.name} has no column {unknown[0]!r}")
    defaults = {f.name: f for f in dataclasses.fields(spec.record)}
    columns = []
    for field in spec.schema:
        if field.name in data.column_names:
            column = data[field.name]
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatch(
                    f"{spec.name}.{field.name}: cannot store {column.type} as {field.type} ({exc})"
                ) from None
        else:
            default = defaults[field.name]
            if default.default is not dataclasses.MISSING:
                value = default.default
            elif default.default_factory is not dataclasses.MISSING:
                value = default.default_factory()
            else:
                raise SchemaMismatch(f"{spec.name} needs column {field.name!r}")
            column = pa.repeat(pa.scalar(value, field.type), data.num_rows)
        if not field.nullable and column.null_count:
            raise SchemaMismatch(f"{spec.name}.{field.name} has nulls; it needs a value per row")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=spec.schema)


def write_table(root: Root, table: str, data: pa.Table) -> list[Written]:
    """Rows of one table given as Arrow columns, one new file per run: what bulk producers
    (an import, a benchmark) hand over instead of a record per row, which the writer would
    otherwise convert to columns one row at a time (~4 us a sample row)."""
    if table not in TABLES:
        raise SchemaMismatch(f"no table {table!r} (tables: {', '.join(TABLES)})")
    data = conform(TABLES[table], data)
    if data.num_rows == 0:
        return []
    import pyarrow.compute as pc

    # Runs as small integers, so each run's rows are picked by comparing ints, not strings.
    codes = pc.dictionary_encode(data["run_id"]).combine_chunks()
    runs = codes.dictionary.to_pylist()
    if len(runs) == 1:
        return [_write_file(root, table, runs[0], data)]
    return [
        _write_file(root, table, run, data.filter(pc.equal(codes.indices, i)))
        for i, run in enumerate(runs)
    ]


def _write_schema_only(schema: pa.Schema) -> Callable[[BinaryIO], None]:
    def write(fh: BinaryIO) -> None:
        # No row group at all: `datasets` rejects a file whose first row group is empty.
        pq.ParquetWriter(fh, schema).close()

    return write


def ensure_schema_files(root: Root) -> None:
    """A file per table with its schema and no rows, so the stored views always bind."""
    location = remote(root)
    if location is not None:
        _ensure_schema_objects(location)
        return
    root = Path(root)
    for spec in TABLES.values():
        path = table_dir(root, spec.name) / SCHEMA_DIR / SCHEMA_FILE
        if path.exists():
            try:
                meta = pq.read_metadata(path)
                if meta.num_row_groups == 0 and meta.schema.to_arrow_schema().equals(spec.schema):
                    continue
            except (OSError, pa.ArrowInvalid):
                pass  # a torn or foreign file: rewrite it
        publish(root, path, _write_schema_only(spec.schema))


def _ensure_schema_objects(location: Location) -> None:
    # Two processes opening at once may both put the same bytes: either PUT is whole.
    for spec in TABLES.values():
        key = location.key("tables", spec.name, SCHEMA_DIR, SCHEMA_FILE)
        try:
            meta = objects.footer(location, key)
            if meta.num_row_groups == 0 and meta.schema.to_arrow_schema().equals(spec.schema):
                continue
        except (OSError, pa.ArrowInvalid):
            pass  # missing, torn or foreign: (re)write it
        objects.put(location, key, _write_schema_only(spec.schema))


def migrate_legacy_layout(root: Path) -> int:
    """Move the files of `tables/<table>/run_id=<run>/` to `tables/<table>/<run>/`; returns
    how many moved. Each file is linked under its new name before the old name goes, so it
    is always in at least one place: no row is lost, a writer of the former code still
    writing into its folder is undisturbed, and a query meanwhile may read a file twice
    (the views' dedup absorbs it; only one that lists the two folders on either side of
    that file's move misses it, that once). Safe to run in several processes at once and
    to kill: a later run finishes the job. The former schema files hold no rows and go."""
    moved = 0
    tables = root / "tables"
    if not tables.is_dir():
        return 0
    for legacy in sorted(tables.glob(f"*/{LEGACY_PREFIX}*")):
        if not legacy.is_dir():
            continue
        run_id = legacy.name[len(LEGACY_PREFIX) :]
        if run_id == "_schema":
            for f in legacy.glob("*.parquet"):
                try:
                    if pq.read_metadata(f).num_rows == 0:
                        f.unlink()
                except (OSError, pa.ArrowInvalid):
                    pass  # gone meanwhile, or not a file this code wrote: leave it
        else:
            target = legacy.parent / run_folder(run_id)
            for f in sorted(legacy.glob("*.parquet")):
                if _move_keeping_one_copy(f, target / f.name):
                    moved += 1
        # Left while not empty: a former writer's `.tmp` file, or a file that did not move.
        with contextlib.suppress(OSError):
            legacy.rmdir()
    return moved


def _move_keeping_one_copy(src: Path, dst: Path) -> bool:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:
        pass  # moved before (names are unique) by a migration that stopped short of unlink
    except FileNotFoundError:
        return False  # another process moved it meanwhile
    except OSError:
        # No hard links here: a rename is still atomic, only a reader listing both folders
        # at that moment might miss the file once.
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            return False
        return True
    src.unlink(missing_ok=True)
    return True


def sweep_tmp(root: Path, older_than_s: float = 3600.0) -> int:
    """Remove `.tmp` files left by killed writers; young ones may belong to a live writer."""
    removed = 0
    cutoff = time.time() - older_than_s
    # `.tmp/` now; the run folders for files left by the former writer.
    candidates = [*(root / TMP_DIR).glob(f"*{TMP_SUFFIX}")]
    candidates += (root / "tables").glob(f"*/*/*{TMP_SUFFIX}")
    for tmp in candidates:
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def replaced_files(meta: pq.FileMetaData) -> set[str]:
    """The names of the files a merged file replaces; none for a written batch."""
    raw = (meta.metadata or {}).get(COMPACTED_FROM.encode())
    return set(json.loads(raw)) if raw else set()


# (path, inode, size, mtime) -> (rows, the names it replaces). A published file never
# changes (it is written under another name and renamed into place), so its footer is read
# once: a sampling run counts its rows after every shard, and re-reading every footer each
# time made that quadratic (3,092 footer reads for 78 shards). A name reused by another
# file has another inode or mtime, so it is read afresh.
_FOOTERS: dict[tuple[str, int, int, int], tuple[int, frozenset[str]]] = {}
_FOOTERS_MAX = 65_536  # files; then start over


def _footer(path: Path, moved_to: Path) -> tuple[int, frozenset[str]]:
    """(rows, names replaced) of a published file, or of `moved_to` if it moved from the
    former folder since the listing (FileNotFoundError if it is gone from both)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path == moved_to:
            raise
        path, st = moved_to, moved_to.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    known = _FOOTERS.get(key)
    if known is None:
        meta = pq.read_metadata(path)
        known = (meta.num_rows, frozenset(replaced_files(meta)))
        if len(_FOOTERS) >= _FOOTERS_MAX:
            _FOOTERS.clear()
        _FOOTERS[key] = known
    return known


def _run_footers(root: Path, table: str, run_id: str) -> tuple[dict[str, int], set[str], bool]:
    """Rows per file of a run's folder(s), the names merged files replace, and whether a
    listed file was gone before its footer was read."""
    current = run_dir(root, table, run_id)
    files: dict[str, Path] = {}
    # A file may sit in the former layout's folder, or in both while it migrates (once).
    for directory in (table_dir(root, table) / f"{LEGACY_PREFIX}{run_id}", current):
        files |= {f.name: f for f in directory.glob("*.parquet")}
    rows: dict[str, int] = {}
    replaced: set[str] = set()
    vanished = False
    for name, f in files.items():
        try:
            rows[name], replaces = _footer(f, current / name)
        except FileNotFoundError:
            vanished = True  # merged meanwhile: the merged file is in the next listing
            continue
        replaced |= replaces
    return rows, replaced, vanished


def _run_object_footers(
    location: Location, table: str, run_id: str
) -> tuple[dict[str, int], set[str], bool]:
    """`_run_footers` of a run's prefix on object storage (no former layout there)."""
    pattern = location.key("tables", table, run_folder(run_id), "*.parquet")
    rows: dict[str, int] = {}
    replaced: set[str] = set()
    vanished = False
    for key in objects.parquet_keys(location, pattern):
        try:
            meta = objects.footer(location, key)
        except FileNotFoundError:
            vanished = True
            continue
        rows[key.rsplit("/", 1)[-1]] = meta.num_rows
        replaced |= replaced_files(meta)
    return rows, replaced, vanished


def rows_in_run(root: Root, table: str, run_id: str) -> int:
    """Rows one run has written to a table so far, from the files' footers (no scan).

    A compaction (`compact.py`) publishes a merged file before it removes the files merged
    into it: while both exist, those the merged file names as replaced are not counted, and
    a file removed between the listing and its footer's read makes the count list again.
    Past `COUNT_ATTEMPTS` such lists (compactions in a row), it counts what it could read:
    this only feeds progress bars.
    """
    location = remote(root)
    for _ in range(COUNT_ATTEMPTS):
        if location is not None:
            rows, replaced, vanished = _run_object_footers(location, table, run_id)
        else:
            rows, replaced, vanished = _run_footers(Path(root), table, run_id)
        if not vanished:
            break
    return sum(n for name, n in rows.items() if name not in replaced)
