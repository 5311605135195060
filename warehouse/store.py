"""The warehouse handle every stage uses: open a directory, write records, query with SQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from distillery.warehouse import catalog_duckdb, writer_parquet
from distillery.warehouse.read_retry import retry_vanished

T = TypeVar("T")
ENV_VAR = "DISTILLERY_WAREHOUSE"
DEFAULT_DIR = "warehouse-data"


class WarehouseError(Exception):
    """A warehouse that cannot be opened or written; the message says what to do."""


def default_root() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


@dataclass
class Warehouse:
    root: Path
    # One DuckDB database per handle and process (the stored catalog attached, or views
    # defined in memory: `catalog_duckdb.connect`): a query takes a cursor on it (~2 ms)
    # instead of a fresh database whose every view is bound again (~40-80 ms). The views
    # read the files through globs at each query, so rows written since are always seen.
    _db: catalog_duckdb.Database | None = field(default=None, repr=False, compare=False)
    _db_pid: int = field(default=0, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def open(cls, root: Path | str | None = None) -> Warehouse:
        """Create the layout if needed; fails before anything is written if it cannot."""
        path = Path(root) if root is not None else default_root()
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
        path = Path(root) if root is not None else default_root()
        if not (path / "tables").is_dir():
            raise WarehouseError(
                f"no warehouse at {path}; run `distillery prompts load seeds` first "
                f"or pass --warehouse DIR"
            )
        return cls(path)

    @property
    def catalog_path(self) -> Path:
        return self.root / catalog_duckdb.CATALOG_FILE

    def write(self, rows: Sequence[object]) -> list[Path]:
        if not rows:
            return []
        return writer_parquet.write_records(self.root, rows)

    def write_table(self, table: str, data: pa.Table) -> list[Path]:
        """Rows of `table` as Arrow columns (see `writer_parquet.write_table`)."""
        return writer_parquet.write_table(self.root, table, data)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A cursor on this handle's database (close it, or use it in a `with`)."""
        with self._lock:
            if self._db is None or self._db_pid != os.getpid():
                # A database is not usable across fork: a child builds its own.
                self._db = catalog_duckdb.connect(self.root)
                self._db_pid = os.getpid()
            else:
                # A table that had no file when its view was defined (an older warehouse
                # opened read-only) gets its file-reading view once files exist.
                self._db.refresh(self.root)
            return self._db.cursor()

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
        source = catalog_duckdb.files_sql(self.root, table)

        def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
            con.register("wanted_ids", pa.table({"id": wanted}))
            return con.execute(
                f"SELECT DISTINCT t.{column} FROM {source} t SEMI JOIN wanted_ids w "
                f"ON t.{column} = w.id"
            ).fetchall()

        return {r[0] for r in self.read(read)}
