import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from distillery.warehouse.records import RunRecord, utcnow
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse, WarehouseError
from distillery.warehouse.tables import TABLES
from distillery.warehouse.writer_parquet import SCHEMA_DIR, rows_in_run


def test_open_creates_layout_and_catalog(tmp_path):
    wh = Warehouse.open(tmp_path / "w")
    assert (wh.root / "catalog.duckdb").is_file()
    assert (wh.root / "tables" / "samples").is_dir()


def test_unwritable_directory_is_a_clear_error():
    # /proc refuses new directories even to root, which ignores permission bits.
    with pytest.raises(WarehouseError, match="pass --warehouse DIR"):
        Warehouse.open("/proc/distillery-warehouse")


def test_a_file_in_the_way_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WarehouseError, match="cannot write to warehouse directory"):
        Warehouse.open(blocker / "w")


def test_open_existing_never_creates(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at"):
        Warehouse.open_existing(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_existing_returns_only_present_ids(wh):
    wh.write([RunRecord("run-1", "f", "{}", "v", utcnow(), None, "running", None)])
    assert wh.existing("runs", "run_id", ["run-1", "run-2", "run-1"]) == {"run-1"}
    assert wh.existing("runs", "run_id", []) == set()


def test_recorded_run_marks_completed_and_failed(wh):
    with recorded_run(wh, "ok-flow", {"a": 1}) as ok_id:
        assert wh.query("SELECT status FROM runs WHERE run_id = ?", [ok_id]) == [("running",)]
    with pytest.raises(RuntimeError), recorded_run(wh, "bad-flow", {}) as bad_id:
        raise RuntimeError("boom")
    rows = dict(wh.query("SELECT run_id, status FROM runs"))
    assert rows == {ok_id: "completed", bad_id: "failed"}
    (err,) = wh.query("SELECT error FROM runs WHERE run_id = ?", [bad_id])[0]
    assert err == "RuntimeError: boom"
    (params,) = wh.query("SELECT parameters FROM runs WHERE run_id = ?", [ok_id])[0]
    assert params == '{"a":1}'


def test_open_moves_a_legacy_warehouse_to_the_plain_layout_without_losing_rows(tmp_path):
    # The former layout: hive-style `run_id=<run>` folders and empty schema files.
    root = tmp_path / "w"
    wh = Warehouse.open(root)
    with recorded_run(wh, "old", {}) as run_id:
        wh.write([RunRecord("run-x", "f", "{}", "v", utcnow(), None, "running", None)])
    for table in (root / "tables").iterdir():
        shutil.rmtree(table / SCHEMA_DIR)
        schema = table / "run_id=_schema" / "schema.parquet"
        schema.parent.mkdir()
        pq.write_table(TABLES[table.name].schema.empty_table(), schema)
        for run in [p for p in table.iterdir() if p.name.startswith("run-")]:
            run.rename(table / f"run_id={run.name}")
    (root / "catalog.duckdb").unlink()
    query = "SELECT run_id, status FROM runs ORDER BY run_id"
    before = Warehouse.open_existing(root).query(query)
    assert before == sorted([(run_id, "completed"), ("run-x", "running")])
    assert rows_in_run(root, "runs", run_id) == 2

    reopened = Warehouse.open(root)
    assert reopened.query(query) == before
    assert rows_in_run(root, "runs", run_id) == 2
    folders = sorted(p.name for p in (root / "tables" / "runs").iterdir())
    assert folders == sorted([SCHEMA_DIR, run_id, "run-x"])
    # Now a plain folder for every reader.
    assert len(pd.read_parquet(root / "tables" / "runs")) == 3
