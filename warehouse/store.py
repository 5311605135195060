"""The warehouse handle every stage uses: open a location, write records, query with SQL.

A location is a local directory or a URL on object storage (`s3://bucket/prefix`, see
`location.py`). `root` is the location as it was given, as a `Path` (for a URL, the form
`pathlib` collapses it to, `s3:/bucket/prefix`, which `location.parse` reads back): every
stage hands it on as `str(wh.root)` and reopens the same warehouse with it. Files that
must be local (trained models, TRL exports) go under `local_dir`, never under `root`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from distillery.warehouse import catalog_duckdb, objects, writer_parquet
from distillery.warehouse import rollup as rollup_module
from distillery.warehouse.errors import WarehouseError
from distillery.warehouse.location import Location, parse
from distillery.warehouse.read_retry import retry_vanished

__all__ = ["DEFAULT_DIR", "ENV_VAR", "Warehouse", "WarehouseError", "default_root"]

T = TypeVar("T")
ENV_VAR = "DISTILLERY_WAREHOUSE"
DEFAULT_DIR = "warehouse-data"


def default_root() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


@dataclass
class Warehouse:
    root: Path
    location: Location = field(init=False, repr=False, compare=False)
    # One DuckDB database per handle and process (the stored catalog attached, or views
    # defined in memory: `catalog_duckdb.connect`): a query takes a cursor on it (~2 ms)
    # instead of a fresh database whose every view is bound again (~40-80 ms). The views
    # read the files through globs at each query, so rows written since are always seen.
    _db: catalog_duckdb.Database | None = field(default=None, repr=False, compare=False)
    _db_pid: int = field(default=0, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.location = parse(self.root)  # an unknown scheme fails here, as it is given
        self.root = Path(self.root)

    @property
    def url(self) -> str:
        """The location as a user writes it: the directory, or `s3://bucket/prefix`."""
        return self.location.url

    @property
    def local_dir(self) -> Path:
        """Where local-only files go: `root` itself, or an object-storage warehouse's side
        directory (`DISTILLERY_LOCAL_DIR`, else one per URL under ~/.cache/distillery)."""
        return self.location.local_dir

    @classmethod
    def open(cls, root: Path | str | None = None) -> Warehouse:
        """Create the layout if needed; fails before anything is written if it cannot."""
        location = parse(root if root is not None else default_root())
        if not location.is_local:
            objects.probe(location)
            writer_parquet.ensure_schema_files(location)
            return cls(Path(location.url))
        path = Path(location.base)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise WarehouseError(
                f"cannot write to warehouse directory {path} ({exc.strerror}); "
                f"pass --warehouse DIR or set {ENV_VAR} to a writable directory"
            ) from None
        writer_parquet.migrate_legacy_layout(path)
        writer_parquet.ensure_schema_files(path)
        writer_parquet.sweep_tmp(path)
        catalog_duckdb.write_catalog(path)
        return cls(path)

    @classmethod
    def open_existing(cls, root: Path | str | None = None) -> Warehouse:
        """For readers: never creates anything."""
        location = parse(root if root is not None else default_root())
        if not location.is_local:
            if not objects.has_tables(location):
                raise WarehouseError(
                    f"no warehouse at {location.url}; run `distillery prompts load seeds` "
                    f"first or pass --warehouse URL"
                )
            return cls(Path(location.url))
        path = Path(location.base)
        if not (path / "tables").is_dir():
            raise WarehouseError(
                f"no warehouse at {path}; run `distillery prompts load seeds` first "
                f"or pass --warehouse DIR"
            )
        return cls(path)

    @property
    def catalog_path(self) -> Path:
        # Local only (`Location.path` says so otherwise): object storage has no catalog file.
        return self.location.path / catalog_duckdb.CATALOG_FILE

    @property
    def _where(self) -> Path | Location:
        # What the writer and the catalog take: the directory itself when local, so that
        # its code paths see exactly the path they always did.
        return self.root if self.location.is_local else self.location

    def write(self, rows: Sequence[object]) -> list[writer_parquet.Written]:
        if not rows:
            return []
        return writer_parquet.write_records(self._where, rows)

    def write_table(self, table: str, data: pa.Table) -> list[writer_parquet.Written]:
        """Rows of `table` as Arrow columns (see `writer_parquet.write_table`)."""
        return writer_parquet.write_table(self._where, table, data)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A cursor on this handle's database (close it, or use it in a `with`)."""
        with self._lock:
            if self._db is None or self._db_pid != os.getpid() or self._db.stale(self._where):
                # A database is not usable across fork: a child builds its own. A new
                # roll-up (a compaction ran) gets views that read it.
                self._db = catalog_duckdb.connect(self._where)
                self._db_pid = os.getpid()
            else:
                # A table that had no file when its view was defined (an older warehouse
                # opened read-only) gets its file-reading view once files exist.
                self._db.refresh(self._where)
            return self._db.cursor(self._where)

    def rollup(self) -> rollup_module.Snapshot | None:
        """The roll-up this handle's views read (loaded once, when its database was made);
        call it inside `read`, where the database is current."""
        return self._db.snapshot if self._db is not None else None

    def __getstate__(self) -> dict[str, Any]:
        # Handed to another process (a task, a worker): the path travels, not the database.
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`fn(cursor)`: every read goes through here. A compaction may remove a file the
        views listed before DuckDB opens it; `fn` then runs again on a fresh cursor, which
        lists the merged file instead (`read_retry.py`). `fn` must only read."""

        def once() -> T:
            with self.connect() as con:
                return fn(con)

        return retry_vanished(once)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.read(lambda con: con.execute(sql, params or []).fetchall())

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.read(lambda con: con.sql(sql, params=list(params or [])).to_arrow_table())

    def existing(self, table: str, column: str, values: Iterable[str]) -> set[str]:
        """Which of `values` already have a row in `table` (keyed lookups for resume)."""
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return set()
        # The files, not the deduplicating view: a key either has a row or not, so only its
        # column is read (a semi-join on it), never whole rows windowed over the history.
        # A merged file and the files it replaces, both there while a compaction runs,
        # hold the same keys: DISTINCT makes that no different.
        source = catalog_duckdb.files_sql(self._where, table)

        def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
            con.register("wanted_ids", pa.table({"id": wanted}))
            return con.execute(
                f"SELECT DISTINCT t.{column} FROM {source} t SEMI JOIN wanted_ids w "
                f"ON t.{column} = w.id"
            ).fetchall()

        return {r[0] for r in self.read(read)}
