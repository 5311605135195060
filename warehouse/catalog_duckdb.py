"""DuckDB views over the Parquet files, deduplicated by key, plus the catalog file users open.

The views are the only SQL definition of a table. `connect()` builds them in an in-memory
database (never locks anything); `write_catalog()` stores the same views in
`catalog.duckdb` for the DuckDB CLI or Python (`duckdb.connect(path, read_only=True)`).
Both read the files through globs, so rows written after the catalog was made show up
without touching the catalog.

The catalog file is written in an older storage format (`STORAGE_VERSION`), so that a DuckDB
CLI older than the `duckdb` Python package (a `duckdb-cli` wheel, a distribution's package)
opens it; its views use no syntax newer than that either.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from distillery.warehouse.queries import DEFINITIONS
from distillery.warehouse.tables import TABLES, TableSpec
from distillery.warehouse.writer_parquet import table_dir

CATALOG_FILE = "catalog.duckdb"
CATALOG_VERSION = "6"
# DuckDB 1.0's storage format (version number 64), which any DuckDB from 1.0 on reads;
# a file in the newest format is refused by every DuckDB older than the writer.
STORAGE_VERSION = "v1.0.0"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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


def _has_files(root: Path, spec: TableSpec) -> bool:
    # Any run's file, the schema file (`_schema/`) or a file of the former layout
    # (`run_id=<run>/`): the views' glob matches them all.
    return any(table_dir(root.resolve(), spec.name).glob("*/*.parquet"))


def files_sql(root: Path, table: str) -> str:
    """Every row of every file of `table`, not deduplicated: for questions a duplicate
    cannot change (does this key exist?), which then read only the columns they name
    instead of windowing whole rows over the table's history. A table without any file
    yet reads as no rows of today's schema."""
    spec = TABLES[table]
    glob = _glob(root, spec)
    if glob is None:
        return f"({_typed_empty(spec)})"
    return f"read_parquet({_quote(glob)}, union_by_name = true, hive_partitioning = false)"


# Tables that also get a `raw_<table>` view: every row of every file, copies included, for
# canned views that aggregate by key themselves (cheaper than the deduplicating view's
# window over whole rows).
RAW_VIEWS = ("samples", "verdicts")


def _source(spec: TableSpec, glob: str | None) -> str:
    """The table's rows, every copy, under today's column names: its files unioned by name
    with an empty row set of today's schema, so every current column exists (NULL in
    files written before it was added) and a table without any file yet (`glob` None: an
    older warehouse opened read-only) still has a typed source."""
    source = _typed_empty(spec)
    if glob is not None:
        source = (
            f"SELECT * FROM read_parquet({_quote(glob)}, union_by_name = true, "
            f"hive_partitioning = false) UNION ALL BY NAME {source}"
        )
    return f"SELECT {_current_names(spec)} FROM ({source})"


def _glob(root: Path, spec: TableSpec) -> str | None:
    """The glob over the table's files, or None while it has none (one listing: a caller
    that needs both answers asks once, so they cannot disagree)."""
    if not _has_files(root, spec):
        return None
    return str(table_dir(root.resolve(), spec.name) / "*" / "*.parquet")


def view_sql(spec: TableSpec, glob: str | None) -> str:
    """The deduplicating view: one row per key, the first or last written (`spec.keep`)."""
    key = ", ".join(spec.key)
    order = "created_at DESC" if spec.keep == "last" else "created_at ASC"
    return (
        f"CREATE OR REPLACE VIEW {spec.name} AS SELECT * FROM ({_source(spec, glob)}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1"
    )


def raw_view_sql(spec: TableSpec, glob: str | None) -> str:
    """`raw_<table>`: every copy of every row."""
    return f"CREATE OR REPLACE VIEW raw_{spec.name} AS {_source(spec, glob)}"


def define(con: duckdb.DuckDBPyConnection, root: Path) -> set[str]:
    """Define every view and macro; returns the tables that had no file yet."""
    empty = set()
    for spec in TABLES.values():
        # Globbed once per table: a first file landing meanwhile cannot leave a view
        # typed-empty while the returned set says the table has files.
        glob = _glob(root, spec)
        if glob is None:
            empty.add(spec.name)
        con.execute(view_sql(spec, glob))
        if spec.name in RAW_VIEWS:
            con.execute(raw_view_sql(spec, glob))
    for definition in DEFINITIONS:
        con.execute(definition)
    return empty


def refresh(con: duckdb.DuckDBPyConnection, root: Path, empty: set[str]) -> set[str]:
    """Redefine the views of `empty` tables that have files now; returns those still empty."""
    grown = {name for name in empty if _has_files(root, TABLES[name])}
    if grown:
        define(con, root)  # the canned views over them are bound again too
    return empty - grown


def connect(root: Path) -> tuple[duckdb.DuckDBPyConnection, set[str]]:
    """A private in-memory database with every view defined (safe beside any writer), and
    the tables that had no file yet."""
    con = duckdb.connect(":memory:")
    return con, define(con, root)


def write_catalog(root: Path) -> None:
    """(Re)write catalog.duckdb when missing or made for another root or version."""
    path = root / CATALOG_FILE
    stamp = f"{CATALOG_VERSION}:{STORAGE_VERSION}:{root.resolve()}"
    if path.exists():
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                row = con.execute(
                    "SELECT value FROM distillery_meta WHERE key = 'stamp'"
                ).fetchone()
            if row and row[0] == stamp:
                return
        except duckdb.Error:
            pass
    tmp = path.with_name(f"{CATALOG_FILE}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        config = {"storage_compatibility_version": STORAGE_VERSION}
        with duckdb.connect(str(tmp), config=config) as con:
            define(con, root)
            con.execute("CREATE TABLE distillery_meta (key VARCHAR, value VARCHAR)")
            con.execute("INSERT INTO distillery_meta VALUES ('stamp', ?)", [stamp])
        # Rename over the old file: an open reader keeps its old inode and is undisturbed.
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
