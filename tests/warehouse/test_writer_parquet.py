import os
import time

import pyarrow.parquet as pq
import pytest

from distillery.warehouse.records import RunRecord, SampleRecord, utcnow
from distillery.warehouse.writer_parquet import (
    SCHEMA_PARTITION,
    ensure_schema_files,
    sweep_tmp,
    write_records,
)


def _run(run_id: str, status: str = "running") -> RunRecord:
    return RunRecord(run_id, "f", "{}", "v", utcnow(), None, status, None)


def test_one_new_file_per_table_and_run(tmp_path):
    paths = write_records(tmp_path, [_run("run-a"), _run("run-b"), _run("run-a", "completed")])
    assert len(paths) == 2
    assert {p.parent.name for p in paths} == {"run_id=run-a", "run_id=run-b"}
    a = next(p for p in paths if p.parent.name == "run_id=run-a")
    assert pq.read_table(a).column("status").to_pylist() == ["running", "completed"]
    # Writing again never touches an existing file.
    again = write_records(tmp_path, [_run("run-a")])
    assert again[0] not in paths and all(p.exists() for p in paths)


def test_rejects_non_records(tmp_path):
    with pytest.raises(TypeError, match="not a warehouse record"):
        write_records(tmp_path, [{"run_id": "x"}])


def test_schema_rejects_wrong_types(tmp_path):
    bad = SampleRecord(
        "s", "p", "m", "run-x", "b", "not-an-int", 0, 0.8, 0.9, 8, "t", 1, 1, "stop", 0.1
    )
    with pytest.raises((TypeError, ValueError)):
        write_records(tmp_path, [bad])
    assert not list(tmp_path.rglob("*.parquet"))


def test_schema_files_are_empty_and_rewritten_when_torn(tmp_path):
    ensure_schema_files(tmp_path)
    path = tmp_path / "tables" / "samples" / SCHEMA_PARTITION / "schema.parquet"
    assert pq.read_table(path).num_rows == 0
    path.write_bytes(b"torn")
    ensure_schema_files(tmp_path)
    assert pq.read_table(path).num_rows == 0


def test_sweep_removes_only_stale_tmp_files(tmp_path):
    d = tmp_path / "tables" / "samples" / "run_id=r"
    d.mkdir(parents=True)
    old, young = d / "a.parquet.tmp", d / "b.parquet.tmp"
    old.write_bytes(b"x")
    young.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert sweep_tmp(tmp_path) == 1
    assert not old.exists() and young.exists()
