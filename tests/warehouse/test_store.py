import pytest

from distillery.warehouse.records import RunRecord, utcnow
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse, WarehouseError


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
