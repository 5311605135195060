import os
import time

import pyarrow.parquet as pq
import pytest

from distillery.warehouse import writer_parquet
from distillery.warehouse.records import RunRecord, SampleRecord, utcnow
from distillery.warehouse.tables import TABLES
from distillery.warehouse.writer_parquet import (
    SCHEMA_DIR,
    SCHEMA_FILE,
    TMP_DIR,
    ensure_schema_files,
    migrate_legacy_layout,
    rows_in_run,
    run_folder,
    sweep_tmp,
    write_records,
)


def _run(run_id: str, status: str = "running") -> RunRecord:
    return RunRecord(run_id, "f", "{}", "v", utcnow(), None, status, None)


def test_one_new_file_per_table_and_run(tmp_path):
    paths = write_records(tmp_path, [_run("run-a"), _run("run-b"), _run("run-a", "completed")])
    assert len(paths) == 2
    assert {p.parent.name for p in paths} == {"run-a", "run-b"}
    a = next(p for p in paths if p.parent.name == "run-a")
    assert pq.read_table(a).column("status").to_pylist() == ["running", "completed"]
    # Writing again never touches an existing file.
    again = write_records(tmp_path, [_run("run-a")])
    assert again[0] not in paths and all(p.exists() for p in paths)
    # Nothing but the published files under tables/: the temporary ones live in .tmp/.
    assert sorted((tmp_path / "tables").rglob("*.*")) == sorted([*paths, *again])
    assert not list((tmp_path / TMP_DIR).iterdir())
    assert rows_in_run(tmp_path, "runs", "run-a") == 3


def test_counting_a_run_reads_each_file_footer_once(tmp_path, monkeypatch):
    """A run's rows are counted after every shard it writes: each file's footer is read the
    first time it is counted, not again at every later count."""
    reads = []
    read_metadata = pq.read_metadata
    monkeypatch.setattr(writer_parquet, "_FOOTERS", {})
    monkeypatch.setattr(
        writer_parquet.pq, "read_metadata", lambda path: reads.append(path) or read_metadata(path)
    )
    for batch in range(1, 6):
        write_records(tmp_path, [_run("run-a"), _run("run-a", "completed")])
        assert rows_in_run(tmp_path, "runs", "run-a") == 2 * batch
    assert len(reads) == 5 and len(set(reads)) == 5
    # A file replaced under its own name (same path, new contents) is read afresh.
    (newest,) = {*reads} - {*reads[:4]}
    pq.write_table(pq.read_table(newest).slice(0, 1), newest)
    assert rows_in_run(tmp_path, "runs", "run-a") == 9
    assert reads[-1] == newest and len(reads) == 6


def test_run_folders_are_plain_segments_never_hive_pairs_or_hidden():
    assert run_folder("run-0a1b") == "run-0a1b"
    assert run_folder("a=b/c") == "a%3Db%2Fc"
    assert run_folder(".x") == "%2Ex" and run_folder("_x") == "%5Fx"
    assert run_folder("50%") == "50%25"  # so no two run ids share a folder
    with pytest.raises(ValueError, match="non-empty run_id"):
        run_folder("")


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


def test_schema_files_have_no_row_group_and_are_rewritten_when_torn(tmp_path):
    ensure_schema_files(tmp_path)
    path = tmp_path / "tables" / "samples" / SCHEMA_DIR / SCHEMA_FILE
    # No row group at all (not an empty one), which `datasets` refuses.
    assert pq.read_metadata(path).num_row_groups == 0
    assert pq.read_schema(path).equals(TABLES["samples"].schema)
    stamp = path.stat().st_mtime_ns
    ensure_schema_files(tmp_path)
    assert path.stat().st_mtime_ns == stamp  # left alone when current
    path.write_bytes(b"torn")
    ensure_schema_files(tmp_path)
    assert pq.read_metadata(path).num_row_groups == 0


def _legacy(root, run_id):
    """Move a run's files to the former layout's folder, `run_id=<run>`."""
    for table in (root / "tables").iterdir():
        new = table / run_id
        if new.is_dir():
            new.rename(table / f"run_id={run_id}")


def test_legacy_layout_migrates_file_by_file_and_can_be_resumed(tmp_path):
    write_records(tmp_path, [_run("run-a"), _run("run-a", "completed"), _run("run-b")])
    _legacy(tmp_path, "run-a")
    old = tmp_path / "tables" / "runs" / "run_id=run-a"
    (old_file,) = old.glob("*.parquet")
    schema = tmp_path / "tables" / "runs" / "run_id=_schema" / "schema.parquet"
    schema.parent.mkdir()
    pq.write_table(TABLES["runs"].schema.empty_table(), schema)
    assert rows_in_run(tmp_path, "runs", "run-a") == 2  # the legacy folder still counts
    # A migration that stopped between linking and unlinking: the file is in both places.
    new = tmp_path / "tables" / "runs" / "run-a"
    new.mkdir()
    os.link(old_file, new / old_file.name)
    assert rows_in_run(tmp_path, "runs", "run-a") == 2  # counted once
    # A writer of the former code still has a temporary file there: the folder stays.
    (old / "x.parquet.tmp").write_bytes(b"x")
    assert migrate_legacy_layout(tmp_path) == 1
    assert sorted(p.name for p in new.iterdir()) == [old_file.name]
    assert [p.name for p in old.iterdir()] == ["x.parquet.tmp"]
    assert not schema.parent.exists()
    (old / "x.parquet.tmp").unlink()
    assert migrate_legacy_layout(tmp_path) == 0
    assert not old.exists()
    assert rows_in_run(tmp_path, "runs", "run-a") == 2
    assert pq.read_table(new).column("status").to_pylist() == ["running", "completed"]


def test_sweep_removes_only_stale_tmp_files(tmp_path):
    legacy = tmp_path / "tables" / "samples" / "run_id=r"  # where the former writer left them
    legacy.mkdir(parents=True)
    (tmp_path / TMP_DIR).mkdir()
    old, young = tmp_path / TMP_DIR / "a.tmp", tmp_path / TMP_DIR / "b.tmp"
    old_legacy = legacy / "c.parquet.tmp"
    for f in (old, young, old_legacy):
        f.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    os.utime(old_legacy, (past, past))
    assert sweep_tmp(tmp_path) == 2
    assert not old.exists() and not old_legacy.exists() and young.exists()


def _samples(n: int, run_id: str = "run-a") -> list[SampleRecord]:
    return [
        SampleRecord(
            f"smp-{run_id}-{i}",
            f"prm-{i % 3}",
            "mdl",
            run_id,
            "t",
            i,
            0,
            0.8,
            0.95,
            16,
            f"text {i}",
            1,
            2,
            "stop",
            0.1,
        )
        for i in range(n)
    ]


def test_arrow_columns_are_stored_as_the_same_records_would_be(tmp_path):
    from distillery.warehouse.store import Warehouse
    from distillery.warehouse.writer_parquet import to_arrow

    rows = _samples(5, "run-a") + _samples(2, "run-b")
    data = to_arrow(TABLES["samples"], rows)
    wh = Warehouse.open(tmp_path / "wh")
    paths = wh.write_table("samples", data)
    assert sorted(p.parent.name for p in paths) == ["run-a", "run-b"]
    got = wh.arrow("SELECT * FROM samples ORDER BY run_id, sample_id")
    want = to_arrow(TABLES["samples"], sorted(rows, key=lambda r: (r.run_id, r.sample_id)))
    assert got.to_pylist() == want.to_pylist()


def test_arrow_columns_left_out_get_the_record_defaults(tmp_path):
    import pyarrow as pa

    from distillery.warehouse.store import Warehouse

    full = {
        name: pa.array([getattr(r, name) for r in _samples(3)])
        for name in TABLES["samples"].columns
        if name not in ("procedure", "context_id", "created_at")
    }
    wh = Warehouse.open(tmp_path / "wh")
    before = utcnow()
    wh.write_table("samples", pa.table(full))
    rows = wh.query("SELECT procedure, context_id, created_at FROM samples")
    assert [(p, c) for p, c, _ in rows] == [("sample", None)] * 3
    assert all(at >= before for _, _, at in rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.append_column("colour", pa_array(["x"] * 3)),
            "samples has no column 'colour'",
        ),
        (lambda t: t.drop_columns(["text"]), "samples needs column 'text'"),
        (
            lambda t: t.set_column(t.schema.get_field_index("idx"), "idx", pa_array(["a"] * 3)),
            "samples.idx: cannot store string as int64",
        ),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("text"), "text", pa_array([None, "b", "c"])
            ),
            "samples.text has nulls",
        ),
    ],
)
def test_arrow_columns_that_do_not_fit_are_refused_before_anything_is_written(
    tmp_path, change, message
):
    from distillery.warehouse.writer_parquet import SchemaMismatch, to_arrow, write_table

    data = change(to_arrow(TABLES["samples"], _samples(3)))
    with pytest.raises(SchemaMismatch, match=message.replace(".", r"\.")):
        write_table(tmp_path, "samples", data)
    assert not (tmp_path / "tables").exists()


def pa_array(values):
    import pyarrow as pa

    return pa.array(values)


def test_arrow_columns_in_several_chunks_go_to_one_file_per_run(tmp_path):
    import pyarrow as pa

    from distillery.warehouse.writer_parquet import to_arrow, write_table

    spec = TABLES["samples"]
    data = pa.concat_tables(
        [
            to_arrow(spec, _samples(3, "run-b") + _samples(2, "run-a")),
            to_arrow(spec, _samples(4, "run-c") + _samples(1, "run-z")),
        ]
    )
    paths = write_table(tmp_path, "samples", data)
    counts = {p.parent.name: pq.read_metadata(p).num_rows for p in paths}
    assert counts == {"run-b": 3, "run-a": 2, "run-c": 4, "run-z": 1}
