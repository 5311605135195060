"""A warehouse on object storage: `s3://bucket/prefix` on a real S3-compatible server (moto's
standalone server, started here on a free port), written by two processes at once and read
through the views (DuckDB with the location's fsspec filesystem registered), by pyarrow and
pandas; a bad location fails with one line and writes nothing.

The tests that start the server are in the end-to-end lane (`e2e`); the location rules and
the same code paths on fsspec's in-memory filesystem run in the fast lane.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from distillery.warehouse.compact import compact
from distillery.warehouse.errors import WarehouseError
from distillery.warehouse.location import LOCAL_DIR_ENV, parse
from distillery.warehouse.records import PromptRecord, SampleRecord, VerdictRecord
from distillery.warehouse.store import Warehouse
from distillery.warehouse.writer_parquet import rows_in_run
from tests.s3_server import free_port

WRITERS = 2
PROMPTS = 10  # the same prompt ids from both writers: each key twice on disk
BATCHES = 3
BATCH = 8  # samples per batch; batch 0 is written twice by each writer (a rerun)
# What the warehouse holds after `write_all`, per table: (rows in files, rows in the view).
EXPECTED = {
    "prompts": (WRITERS * PROMPTS, PROMPTS),
    "samples": (WRITERS * (BATCHES + 1) * BATCH, WRITERS * BATCHES * BATCH),
    "verdicts": (WRITERS * BATCHES * BATCH, WRITERS * BATCHES * BATCH),
}
# Each writer's verdicts pass on even sample indices.
PASSED = WRITERS * BATCHES * BATCH // 2


def _sample(writer: int, run_id: str, n: int) -> SampleRecord:
    i = n % BATCH
    return SampleRecord(
        f"smp-{writer}-{n}", f"p-{i % PROMPTS}", "mdl", run_id, "test", i, i, 0.8, 0.95, 8,
        f"text {i}", 1, 2, "stop", 0.1,
    )  # fmt: skip


def records(writer: int) -> list[list[object]]:
    """What writer `writer` writes, one `Warehouse.write` call per list."""
    run_id = f"run-w{writer}"
    prompts: list[object] = [
        PromptRecord(f"p-{i}", "suite", f"fam-{i % 2}", "test", "[]", "{}", None, run_id)
        for i in range(PROMPTS)
    ]
    batches: list[list[object]] = [prompts]
    for b in range(BATCHES):
        samples = [_sample(writer, run_id, b * BATCH + i) for i in range(BATCH)]
        verdicts = [
            VerdictRecord(s.sample_id, "answer", "1", i % 2 == 0, None, "ok", "", 0.1, run_id)
            for i, s in enumerate(samples)
        ]
        batches.append([*samples, *verdicts])
        if b == 0:
            batches.append(samples)  # the same rows again: the view keeps one of each
    return batches


WRITER = textwrap.dedent(
    """
    import sys
    from distillery.warehouse.store import Warehouse
    from tests.warehouse.test_object_storage import records

    wh = Warehouse.open(sys.argv[1])
    for rows in records(int(sys.argv[2])):
        wh.write(rows)
    """
)


def write_all(url: str) -> None:
    """Every writer's records, written by that many processes at once."""
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(w)],
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


def check_counts(wh: Warehouse) -> None:
    for table, (raw, kept) in EXPECTED.items():
        files = wh.query(f"SELECT count(*) FROM {wh_files(wh, table)}")[0][0]
        assert (table, files) == (table, raw)
        assert (table, wh.query(f"SELECT count(*) FROM {table}")[0][0]) == (table, kept)
    assert wh.query("SELECT count(*) FROM raw_samples")[0][0] == EXPECTED["samples"][0]
    assert wh.query("SELECT count(*) FROM verdicts WHERE passed")[0][0] == PASSED
    per_run = wh.query("SELECT run_id, count(*) FROM samples GROUP BY 1 ORDER BY 1")
    assert per_run == [(f"run-w{w}", BATCHES * BATCH) for w in range(WRITERS)]
    # From the files' footers: the rewritten batch is in its run's files twice.
    for w in range(WRITERS):
        assert rows_in_run(wh.root, "samples", f"run-w{w}") == (BATCHES + 1) * BATCH
    assert wh.existing("samples", "sample_id", ["smp-0-0", "smp-1-23", "nope"]) == {
        "smp-0-0",
        "smp-1-23",
    }


def wh_files(wh: Warehouse, table: str) -> str:
    from distillery.warehouse.catalog_duckdb import files_sql

    return files_sql(wh.root, table)


# --- the location, no server ---------------------------------------------------------


def test_parse_local_and_urls():
    assert parse("warehouse-data").is_local
    assert parse(Path("/tmp/w")).path == Path("/tmp/w")
    assert parse("file:///tmp/w").path == Path("/tmp/w")
    s3 = parse("s3://bucket/some/prefix/")
    assert (s3.protocol, s3.bucket, s3.base, s3.url) == (
        "s3",
        "bucket",
        "bucket/some/prefix",
        "s3://bucket/some/prefix",
    )
    # Every stage hands the location on through pathlib, which collapses `//`.
    assert parse(Path("s3://bucket/some/prefix")) == s3
    assert s3.uri("tables", "samples") == "s3://bucket/some/prefix/tables/samples"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("nope://bucket/x", "unknown warehouse scheme 'nope'"),
        ("s3://", "no bucket in 's3://'; pass s3://bucket/prefix"),
    ],
)
def test_a_bad_url_is_one_line(given, says):
    with pytest.raises(WarehouseError) as err:
        Warehouse.open(given)
    assert says in str(err.value)
    assert "\n" not in str(err.value)


def test_handle_travels_as_its_url():
    wh = Warehouse(Path("s3://bucket/prefix"))
    assert wh.url == "s3://bucket/prefix"
    again = pickle.loads(pickle.dumps(wh))
    assert again.location == wh.location
    assert Warehouse(Path(str(wh.root))).url == wh.url  # what stages do with it


def test_local_side_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCAL_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    wh = Warehouse(Path("s3://bucket/team/wh"))
    assert wh.local_dir == tmp_path / "cache/distillery/warehouses/s3/bucket/team/wh"
    monkeypatch.setenv(LOCAL_DIR_ENV, str(tmp_path / "side"))
    assert wh.local_dir == tmp_path / "side"
    local = Warehouse(tmp_path / "w")
    assert local.local_dir == local.root == tmp_path / "w"
    with pytest.raises(WarehouseError, match="on object storage"):
        _ = wh.catalog_path


def test_compaction_refuses_object_storage():
    with pytest.raises(WarehouseError) as err:
        compact("s3://bucket/prefix")
    assert str(err.value) == (
        "cannot compact s3://bucket/prefix: compaction needs a local warehouse directory "
        "(object storage has no lock to keep two compactions apart); nothing was done"
    )


def test_any_fsspec_filesystem_in_process():
    """The object-storage code paths on fsspec's in-memory filesystem (one process)."""
    url = f"memory://wh-{uuid.uuid4().hex[:8]}/prefix"
    wh = Warehouse.open(url)
    for w in range(WRITERS):
        for rows in records(w):
            wh.write(rows)
    check_counts(wh)
    fs = wh.location.fs
    # Written whole under the final key: no temporary file anywhere.
    keys = fs.find(wh.location.key())
    assert keys and all(k.endswith(".parquet") for k in keys)
    assert not any("tmp" in k for k in keys)


# --- a real S3-compatible server ------------------------------------------------------


# The `s3_server` and `bucket` fixtures are in tests/conftest.py (tests/s3_server.py).


@pytest.mark.e2e
def test_two_processes_write_one_s3_warehouse(bucket):
    url = f"s3://{bucket}/team/wh"
    write_all(url)
    wh = Warehouse.open_existing(url)
    check_counts(wh)
    # Every object is a final data file or a table's schema file: nothing temporary.
    keys = wh.location.fs.find(wh.location.key())
    data = [k for k in keys if "/_schema/" not in k]
    assert all(k.endswith(".parquet") for k in keys)
    # prompts and samples/verdicts: one file per (table, run) per write call.
    per_writer = 1 + BATCHES * 2 + 1
    assert len(data) == WRITERS * per_writer


@pytest.mark.e2e
def test_other_readers_read_the_same_objects(bucket):
    import duckdb
    import pandas as pd
    import pyarrow.dataset as ds

    url = f"s3://{bucket}/wh"
    write_all(url)
    location = parse(url)
    raw, _ = EXPECTED["samples"]
    con = duckdb.connect()
    con.register_filesystem(location.fs)
    glob = location.uri("tables", "samples", "*", "*.parquet")
    assert con.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(raw,)]
    # pyarrow and pandas skip the `_schema` folder, as they do on a local disk.
    folder = location.key("tables", "samples")
    assert ds.dataset(folder, filesystem=location.fs, format="parquet").count_rows() == raw
    assert len(pd.read_parquet(folder, filesystem=location.fs)) == raw


@pytest.mark.e2e
def test_a_missing_bucket_or_endpoint_is_one_line_and_writes_nothing(s3_server, monkeypatch):
    with pytest.raises(WarehouseError) as err:
        Warehouse.open("s3://no-such-bucket/wh")
    assert str(err.value).startswith(
        "cannot write to s3://no-such-bucket/wh: no bucket 'no-such-bucket' at "
        f"{s3_server}; create it first"
    )
    with pytest.raises(WarehouseError, match="no bucket 'no-such-bucket'"):
        Warehouse.open_existing("s3://no-such-bucket/wh")

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(WarehouseError) as err:
        Warehouse.open("s3://any/wh")
    assert "check AWS_ENDPOINT_URL and that the server is up" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.e2e
def test_readers_never_create_anything(bucket):
    url = f"s3://{bucket}/empty"
    with pytest.raises(WarehouseError) as err:
        Warehouse.open_existing(url)
    assert str(err.value) == (
        f"no warehouse at {url}; run `distillery prompts load seeds` first or pass --warehouse URL"
    )
    assert parse(url).fs.find(bucket) == []


@pytest.mark.e2e
def test_a_fresh_warehouse_reads_rows_written_after_its_views(bucket):
    url = f"s3://{bucket}/wh"
    wh = Warehouse.open(url)
    assert wh.query("SELECT count(*) FROM samples") == [(0,)]
    Warehouse.open(url).write(records(0)[1])  # another handle, after the views were made
    assert wh.query("SELECT count(*) FROM samples") == [(BATCH,)]
    assert os.environ[LOCAL_DIR_ENV] == str(wh.local_dir)
