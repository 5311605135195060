"""A file removed between a query's glob and its opening: what DuckDB raises, and the
warehouse's reads running again instead of failing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from distillery.warehouse import read_retry
from distillery.warehouse.read_retry import retry_vanished, vanished
from distillery.warehouse.records import RunRecord, utcnow
from distillery.warehouse.store import Warehouse
from distillery.warehouse.writer_parquet import table_dir

RUN_IDS = {f"run-{i}" for i in range(4)}
FILES = 100


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A table of many files (the churn below renames them; their rows stay the same)."""
    wh = Warehouse.open(tmp_path_factory.mktemp("retry") / "wh")
    for i in range(FILES):
        wh.write([RunRecord(f"run-{i % 4}", "f", "{}", "v", utcnow(), None, "running", None)])
    return wh.root


@pytest.fixture
def many_files(root: Path) -> Warehouse:
    wh = Warehouse.open_existing(root)
    wh.connect().close()  # its views defined before any file moves
    return wh


class Churn:
    """Renames the table's files back and forth as fast as it can, until stopped: each
    rename is a file some glob may have listed that is gone when it is opened, while its
    rows stay readable under the other name (as a compaction's merged file holds them)."""

    def __init__(self, root: Path, table: str) -> None:
        self.files = sorted(table_dir(root, table).glob("run-*/*.parquet"))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            f = self.files[i % len(self.files)]
            other = f.with_name(f.name[1:] if f.name.startswith("z") else f"z{f.name}")
            os.replace(f, other)
            self.files[i % len(self.files)] = other
            i += 1


@pytest.fixture
def churn(many_files: Warehouse) -> Iterator[Churn]:
    c = Churn(many_files.root, "runs")
    c.thread.start()
    yield c
    c.stop.set()
    c.thread.join(timeout=30)


def test_duckdb_raises_an_io_error_for_a_listed_file_that_is_gone(many_files, churn):
    glob = str(table_dir(many_files.root, "runs") / "*" / "*.parquet")
    con = duckdb.connect()
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no query met a removed file"
        try:
            con.execute(f"SELECT count(*) FROM read_parquet('{glob}', union_by_name = true)")
        except duckdb.Error as exc:
            error = exc
            break
    assert type(error) is duckdb.IOException
    assert str(error).startswith('IO Error: Cannot open file "')
    assert '": No such file or directory' in str(error)
    assert vanished(error)


def test_a_file_named_by_its_path_that_is_gone_is_vanished_and_an_empty_glob_is_not(tmp_path):
    path = tmp_path / "listed.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet)")
    listed = f"SELECT count(*) FROM read_parquet(['{path}'])"
    assert con.execute(listed).fetchall() == [(1,)]
    path.unlink()  # as a compaction removes a file a cursor listed (`delta_files`)
    with pytest.raises(duckdb.IOException) as gone:
        con.execute(listed)
    assert f'No files found that match the pattern "{path}"' in str(gone.value)
    assert vanished(gone.value)
    with pytest.raises(duckdb.IOException) as empty:
        con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/*.parquet')")
    assert "No files found" in str(empty.value) and not vanished(empty.value)


@pytest.mark.parametrize(
    ("method", "expected", "fresh"),
    [
        (lambda wh: wh.query("SELECT count(*) FROM runs"), [(4,)], False),
        (lambda wh: wh.arrow("SELECT DISTINCT run_id FROM runs").num_rows, 4, False),
        (lambda wh: wh.existing("runs", "run_id", [*RUN_IDS, "run-9"]), RUN_IDS, False),
        # A handle's first read defines its views, which lists and opens the files too.
        (lambda wh: wh.query("SELECT count(*) FROM runs"), [(4,)], True),
    ],
    ids=["query", "arrow", "existing", "query-defining-views"],
)
def test_warehouse_reads_run_again_when_a_listed_file_is_gone(
    many_files, churn, monkeypatch, method, expected, fresh
):
    retried = []

    def seen(exc: BaseException) -> bool:
        # The churn stops once a read has met a removed file, so the next attempt succeeds.
        result = vanished(exc)
        retried.append(result)
        churn.stop.set()
        return result

    monkeypatch.setattr(read_retry, "vanished", seen)
    wh = Warehouse.open_existing(many_files.root) if fresh else many_files
    assert method(wh) == expected
    assert retried and all(retried)


def test_retry_gives_up_after_its_attempts_and_never_retries_other_errors(monkeypatch):
    monkeypatch.setattr(read_retry, "FIRST_PAUSE_S", 0.0)
    calls = []

    def gone() -> None:
        calls.append(1)
        raise duckdb.IOException('IO Error: Cannot open file "x": No such file or directory')

    with pytest.raises(duckdb.IOException):
        retry_vanished(gone, attempts=3)
    assert len(calls) == 3

    def denied() -> None:
        calls.append(1)
        raise duckdb.IOException('IO Error: Cannot open file "x": Permission denied')

    calls.clear()
    with pytest.raises(duckdb.IOException, match="Permission denied"):
        retry_vanished(denied)
    assert len(calls) == 1
