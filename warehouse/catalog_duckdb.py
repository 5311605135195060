"""DuckDB views over the Parquet files, deduplicated by key, plus the catalog file users open.

The views are the only SQL definition of a table. `connect()` builds them in an in-memory
database (never locks anything); `write_catalog()` stores the same views in
`catalog.duckdb` for the DuckDB CLI or Python (`duckdb.connect(path, read_only=True)`).
Both read the files through globs, so rows written after the catalog was made show up
without touching the catalog. The one exception is the roll-up's delta inside
`prompt_outcomes` (`rollup.py`): a cursor of this code lists the files written since the
snapshot itself (`delta_files`) and hands the list to the view in a DuckDB variable, so
the files the snapshot covers are never opened; without the variable (the DuckDB CLI)
the view globs and skips them by name.

On object storage (`location.py`) there is no catalog file: the views are always defined in
memory, on a database with the location's fsspec filesystem registered
(`register_filesystem`), so `read_parquet('s3://…')` globs and reads through it without
DuckDB's httpfs extension (not installable offline, and built for other DuckDB versions).

The catalog file is written in an older storage format (`STORAGE_VERSION`), so that a DuckDB
CLI older than the `duckdb` Python package (a `duckdb-cli` wheel, a distribution's package)
opens it; its views use no syntax newer than that either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from distillery.warehouse import objects, rollup
from distillery.warehouse.location import remote
from distillery.warehouse.queries import DEFINITIONS, PROMPT_OUTCOMES
from distillery.warehouse.tables import TABLES, TableSpec
from distillery.warehouse.writer_parquet import (
    SCHEMA_DIR,
    SCHEMA_FILE,
    TABLE_FILES,
    Root,
    table_dir,
    table_files,
)

CATALOG_FILE = "catalog.duckdb"
CATALOG_VERSION = "7"
# DuckDB 1.0's storage format (version number 64), which any DuckDB from 1.0 on reads;
# a file in the newest format is refused by every DuckDB older than the writer.
STORAGE_VERSION = "v1.0.0"


_quote = rollup.quote


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return {
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }[t]


def _typed_empty(spec: TableSpec) -> str:
    types = {f.name: _duck_type(f.type) for f in spec.schema}
    types |= {former: types[column] for column, former in spec.renamed}
    cols = ", ".join(f"CAST(NULL AS {t}) AS {name}" for name, t in types.items())
    return f"SELECT {cols} WHERE false"


def _current_names(spec: TableSpec) -> str:
    """The select list that reads a renamed column's former name as its new one."""
    if not spec.renamed:
        return "*"
    former = ", ".join(f for _, f in spec.renamed)
    merged = ", ".join(f"coalesce({c}, {f}) AS {c}" for c, f in spec.renamed)
    return f"* EXCLUDE ({former}) REPLACE ({merged})"


def _has_files(root: Root, spec: TableSpec) -> bool:
    location = remote(root)
    if location is not None:
        # The schema object first: one request, where a listing pages through every file.
        schema = location.key("tables", spec.name, SCHEMA_DIR, SCHEMA_FILE)
        if objects.exists(location, schema):
            return True
        return bool(objects.parquet_keys(location, location.key("tables", spec.name, "*", "*")))
    # Any run's file, the schema file (`_schema/`) or a file of the former layout
    # (`run_id=<run>/`): the views' glob matches them all.
    return any(table_dir(Path(root).resolve(), spec.name).glob(TABLE_FILES))


def files_sql(root: Root, table: str) -> str:
    """Every row of every file of `table`, not deduplicated: for questions a duplicate
    cannot change (does this key exist?), which then read only the columns they name
    instead of windowing whole rows over the table's history. A table without any file
    yet reads as no rows of today's schema."""
    spec = TABLES[table]
    glob = _glob(root, spec)
    if glob is None:
        return f"({_typed_empty(spec)})"
    return f"read_parquet({_quote(glob)}, union_by_name = true, hive_partitioning = false)"


def model_sample_ids_sql(root: Root, model_id: str, snapshot: rollup.Snapshot | None) -> str:
    """The ids of `model_id`'s samples (copies included), for anti-joins with ids a model
    would draw (a sample id hashes its model, so no other model's sample can match).

    With a roll-up `snapshot` (local warehouses; the one the handle's views read), its ids
    sorted by model are read only in the row groups that hold this model, plus the files
    written since: the cost follows this model's samples, not every model's."""
    if snapshot is None:
        # Every id: reading the model column too would only slow this down.
        return f"(SELECT sample_id FROM {files_sql(root, 'samples')})"
    return (
        f"(SELECT sample_id FROM {snapshot.read(rollup.MODEL_SAMPLES)} "
        f"WHERE model_id = {_quote(model_id)} "
        f"UNION ALL SELECT sample_id FROM ({delta_sql(root, 'samples', snapshot)}) "
        f"WHERE model_id = {_quote(model_id)})"
    )


# Tables that also get a `raw_<table>` view: every row of every file, copies included, for
# canned views that aggregate by key themselves (cheaper than the deduplicating view's
# window over whole rows).
RAW_VIEWS = ("samples", "verdicts")


def source_sql(
    spec: TableSpec,
    files: str | Sequence[str] | None,
    exclude: Sequence[str] = (),
    variable: str | None = None,
) -> str:
    """The table's rows, every copy, under today's column names: its files (a glob or a
    list of paths) unioned by name with an empty row set of today's schema, so every
    current column exists (NULL in files written before it was added) and a table
    without any file yet (`files` None: an older warehouse opened read-only) still has a
    typed source. Files named in `exclude` are skipped before they are opened. With a
    `variable`, the files are the list it holds when it is set (`getvariable`), else
    `files`."""
    source = _typed_empty(spec)
    if files is not None:
        listed = f"[{', '.join(map(_quote, [files] if isinstance(files, str) else files))}]"
        if variable is not None:
            listed = f"coalesce(getvariable({_quote(variable)}), {listed})"
        reader = f"read_parquet({listed}, union_by_name = true, hive_partitioning = false"
        if exclude:
            skipped = ", ".join(map(_quote, exclude))
            reader = (
                f"SELECT * EXCLUDE (filename) FROM {reader}, filename = true) "
                f"WHERE filename NOT IN ({skipped})"
            )
        else:
            reader = f"SELECT * FROM {reader})"
        source = f"{reader} UNION ALL BY NAME {source}"
    return f"SELECT {_current_names(spec)} FROM ({source})"


def _glob(root: Root, spec: TableSpec) -> str | None:
    """The glob over the table's files, or None while it has none (one listing: a caller
    that needs both answers asks once, so they cannot disagree)."""
    if not _has_files(root, spec):
        return None
    location = remote(root)
    if location is not None:
        return location.uri("tables", spec.name, "*", "*.parquet")
    return str(table_dir(Path(root).resolve(), spec.name) / TABLE_FILES)


def view_sql(spec: TableSpec, glob: str | None) -> str:
    """The deduplicating view: one row per key, the first or last written (`spec.keep`)."""
    key = ", ".join(spec.key)
    order = "created_at DESC" if spec.keep == "last" else "created_at ASC"
    return (
        f"CREATE OR REPLACE VIEW {spec.name} AS SELECT * FROM ({source_sql(spec, glob)}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )


def delta_files(root: Path, table: str, snapshot: rollup.Snapshot) -> list[str]:
    """The files of `table` that `snapshot` does not cover, listed now: what the table's
    glob matches, less the manifest's files. Listed here rather than left to the glob
    because DuckDB reads the footer of every file a glob matches (to union the schemas by
    name) before a filter on the file name can skip it: at 10M rows that is hundreds of
    covered files read for a delta of one. The table's schema file comes first, so the list
    is never empty and always carries today's columns."""
    root = root.resolve()
    folder = table_dir(root, table)
    covered = set(rollup.covered_paths(snapshot, folder, table))
    schema = folder / SCHEMA_DIR / SCHEMA_FILE
    found = [str(p) for p in table_files(root, table) if p != schema]
    head = [str(schema)] if schema.is_file() else []  # absent only in older warehouses
    return head + [path for path in found if path not in covered]


def delta_sql(root: Root, table: str, snapshot: rollup.Snapshot) -> str:
    """Every row of `table` in files `snapshot` does not cover, as listed now, under
    today's column names: for SQL built to be run at once (planning)."""
    return source_sql(TABLES[table], delta_files(Path(root), table, snapshot) or None)


def delta_variable(table: str) -> str:
    """The variable holding `table`'s delta files on an in-process cursor (`Database.cursor`)."""
    return f"distillery_delta_{table}"


def delta_view_sql(root: Root, table: str, snapshot: rollup.Snapshot, glob: str | None) -> str:
    """The delta inside a stored view: the files `delta_variable(table)` lists, which every
    cursor of `Database` sets as it is taken; a reader without it (the DuckDB CLI on
    `catalog.duckdb`) globs the table and skips the covered files by name instead."""
    spec = TABLES[table]
    covered = rollup.covered_paths(snapshot, table_dir(Path(root).resolve(), table), table)
    return source_sql(spec, glob, covered, variable=delta_variable(table))


def raw_view_sql(spec: TableSpec, glob: str | None) -> str:
    """`raw_<table>`: every copy of every row."""
    return f"CREATE OR REPLACE VIEW raw_{spec.name} AS {source_sql(spec, glob)}"


def define(
    con: duckdb.DuckDBPyConnection, root: Root, snapshot: rollup.Snapshot | None = None
) -> set[str]:
    """Define every view and macro; returns the tables that had no file yet.

    With a roll-up `snapshot` (local warehouses), `prompt_outcomes` reads it plus the
    files it does not cover (`rollup.py`) instead of every row."""
    empty = set()
    globs: dict[str, str | None] = {}
    for spec in TABLES.values():
        # Globbed once per table: a first file landing meanwhile cannot leave a view
        # typed-empty while the returned set says the table has files.
        glob = globs[spec.name] = _glob(root, spec)
        if glob is None:
            empty.add(spec.name)
        con.execute(view_sql(spec, glob))
        if spec.name in RAW_VIEWS:
            con.execute(raw_view_sql(spec, glob))
    for definition in DEFINITIONS:
        if definition is PROMPT_OUTCOMES and snapshot is not None:
            delta = {t: delta_view_sql(root, t, snapshot, globs[t]) for t in rollup.COVERED_TABLES}
            definition = rollup.view_sql(snapshot, delta)
        con.execute(definition)
    return empty


def refresh(
    con: duckdb.DuckDBPyConnection,
    root: Root,
    empty: set[str],
    snapshot: rollup.Snapshot | None = None,
) -> set[str]:
    """Redefine the views of `empty` tables that have files now; returns those still empty."""
    grown = {name for name in empty if _has_files(root, TABLES[name])}
    if grown:
        define(con, root, snapshot)  # the canned views over them are bound again too
    return empty - grown


# The name the stored catalog is attached under (`connect`).
ATTACHED = "warehouse"


@dataclass
class Database:
    """One handle's DuckDB database: the views, and how to get a cursor on them."""

    con: duckdb.DuckDBPyConnection
    empty: set[str]  # tables whose views were defined before the table had any file
    attached: bool  # the views are the stored catalog's (attached), not defined in memory
    # What the roll-up pointer (`rollup.current_id`) said when the views were made, and
    # the snapshot they read (None: none, or one this code cannot read).
    current: str | None = None
    snapshot: rollup.Snapshot | None = None

    def cursor(self, root: Root) -> duckdb.DuckDBPyConnection:
        """A cursor on the views. With a roll-up, it holds the files written since the
        snapshot as they are listed now (`delta_files`), for `prompt_outcomes` to read:
        a cursor kept open does not see files written after it was taken there."""
        cur = self.con.cursor()
        if self.attached:
            # A cursor starts in the in-memory database: point it at the catalog's views.
            cur.execute(f"USE {ATTACHED}")
        if self.snapshot is not None and remote(root) is None:
            settings = []
            for table in rollup.COVERED_TABLES:
                files = delta_files(Path(root), table, self.snapshot)
                if files:  # none (an older warehouse): the view's glob instead
                    listed = ", ".join(map(_quote, files))
                    settings.append(f"SET VARIABLE {delta_variable(table)} = [{listed}];")
            if settings:
                cur.execute("\n".join(settings))
        return cur

    def refresh(self, root: Root) -> None:
        if self.empty and not self.attached:
            self.empty = refresh(self.con, root, self.empty, self.snapshot)

    def stale(self, root: Root) -> bool:
        """Whether a compaction has made another roll-up current since the views were made
        (a local warehouse only: object storage has none)."""
        return remote(root) is None and rollup.current_id(Path(root)) != self.current


def connect(root: Root) -> Database:
    """A database with every view defined (safe beside any writer).

    The warehouse's own `catalog.duckdb`, attached read-only, when it was made by this
    code for this root: its stored views are bound when a query uses them, so opening it
    costs ~0.05 s however many files there are. Otherwise (no catalog, another version,
    a read-only warehouse of older code) every view is defined in the in-memory database
    and bound now, each reading its table's file footers: seconds at thousands of files.
    Attached rather than opened as the database itself: DuckDB caches a file's instance
    per process, and an instance inherited across `fork` is not usable.
    """
    con = duckdb.connect(":memory:")
    location = remote(root)
    if location is not None:
        # Cursors (`Database.cursor`) share the database, and with it this registration.
        con.register_filesystem(location.fs)
        return Database(con, define(con, location), attached=False)
    root = Path(root)
    current = rollup.current_id(root)
    snapshot = rollup.load(root, current)
    path = root / CATALOG_FILE
    if path.exists():
        try:
            con.execute(f"ATTACH {_quote(str(path))} AS {ATTACHED} (READ_ONLY)")
            if _stamp_of(con, ATTACHED) == _stamp(root, snapshot):
                # Made by `Warehouse.open` (or a compaction) for this roll-up, after every
                # table got its schema file.
                return Database(con, set(), attached=True, current=current, snapshot=snapshot)
            con.execute(f"DETACH {ATTACHED}")
        except duckdb.Error:
            pass  # torn or foreign: the in-memory views instead
    empty = define(con, root, snapshot)
    return Database(con, empty, attached=False, current=current, snapshot=snapshot)


def _stamp(root: Path, snapshot: rollup.Snapshot | None) -> str:
    made_for = snapshot.id if snapshot is not None else "-"
    return f"{CATALOG_VERSION}:{STORAGE_VERSION}:{root.resolve()}:{made_for}"


def _stamp_of(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> str | None:
    table = f"{catalog}.distillery_meta" if catalog else "distillery_meta"
    row = con.execute(f"SELECT value FROM {table} WHERE key = 'stamp'").fetchone()
    return row[0] if row else None


def write_catalog(root: Path) -> None:
    """(Re)write catalog.duckdb when missing or made for another root, version or roll-up."""
    path = root / CATALOG_FILE
    snapshot = rollup.current(root)
    stamp = _stamp(root, snapshot)
    if path.exists():
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                if _stamp_of(con) == stamp:
                    return
        except duckdb.Error:
            pass
    tmp = path.with_name(f"{CATALOG_FILE}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        config = {"storage_compatibility_version": STORAGE_VERSION}
        with duckdb.connect(str(tmp), config=config) as con:
            define(con, root, snapshot)
            con.execute("CREATE TABLE distillery_meta (key VARCHAR, value VARCHAR)")
            con.execute("INSERT INTO distillery_meta VALUES ('stamp', ?)", [stamp])
        # Rename over the old file: an open reader keeps its old inode and is undisturbed.
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
