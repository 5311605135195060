import struct
import subprocess
import sys
import textwrap

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from distillery.warehouse.catalog_duckdb import CATALOG_FILE
from distillery.warehouse.records import ModelRecord, PairRecord, RunRecord, SampleRecord, utcnow


def _model(promoted: bool) -> ModelRecord:
    return ModelRecord("mdl-1", "m", "src", "dir", "/p", None, None, True, promoted, "run-1")


def test_views_dedup_first_for_content_and_last_for_state(wh):
    wh.write([_model(False)])
    wh.write([_model(True)])
    assert wh.query("SELECT count(*), bool_and(promoted) FROM models") == [(1, True)]
    start = utcnow()
    wh.write([RunRecord("run-1", "f", "{}", "v", start, None, "running", None)])
    wh.write([RunRecord("run-1", "f", "{}", "v", start, utcnow(), "completed", None)])
    assert wh.query("SELECT status FROM runs") == [("completed",)]


def test_empty_tables_are_queryable_with_columns(wh):
    assert wh.query("SELECT count(*) FROM samples") == [(0,)]
    cols = [
        r[0]
        for r in wh.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'verdicts' ORDER BY ordinal_position"
        )
    ]
    assert cols[:3] == ["sample_id", "verifier", "verifier_version"]


def test_catalog_file_opens_read_only_in_another_process_while_writing(wh):
    # A reader holds the catalog open in another process; writes go on and it sees them.
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(wh.root / CATALOG_FILE)!r}, read_only=True)
            for line in sys.stdin:
                print(con.execute("SELECT count(*) FROM models").fetchone()[0], flush=True)
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "0"
        wh.write([_model(False)])
        wh.write([ModelRecord("mdl-2", "m2", "s", "dir", None, None, None, True, False, "run-2")])
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "2"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    # A second read-only connection at the same time is fine too.
    with duckdb.connect(str(wh.root / CATALOG_FILE), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM models").fetchone() == (2,)


def _sample(sample_id: str, procedure: str) -> SampleRecord:
    return SampleRecord(
        sample_id, "p", "m", "run-1", "b", 0, 0, 0.8, 0.95, 8, "t", 1, 1, "stop", 0.0, procedure
    )


def test_files_written_before_a_column_rename_read_under_the_new_name(wh):
    # samples.strategy became samples.procedure and pairs.strategy pairs.pairing: a file
    # written before (the former name) reads beside a new one, and only the new name shows.
    wh.write([_sample("s-new", "retry")])
    (new_file,) = (wh.root / "tables" / "samples").glob("run-1/*.parquet")
    old = pq.read_table(new_file)
    old = old.rename_columns(["strategy" if c == "procedure" else c for c in old.column_names])
    old = old.set_column(0, "sample_id", pa.array(["s-old"]))
    pq.write_table(
        old.set_column(15, "strategy", pa.array(["prompted"])), new_file.with_name("x.parquet")
    )
    pair = PairRecord("pr-1", "p", "s-new", "s-old", 1.0, "best-worst", "run-1")
    wh.write([pair])
    reopened = type(wh).open(wh.root)
    assert reopened.query("SELECT sample_id, procedure FROM samples ORDER BY 1") == [
        ("s-new", "retry"),
        ("s-old", "prompted"),
    ]
    columns = [r[0] for r in reopened.query("DESCRIBE samples")]
    assert "procedure" in columns and "strategy" not in columns
    assert reopened.query("SELECT pair_id, pairing FROM pairs") == [("pr-1", "best-worst")]
    assert "strategy" not in [r[0] for r in reopened.query("DESCRIBE pairs")]


def test_catalog_file_is_in_a_storage_format_older_duckdb_reads(wh):
    # The file header: a checksum, "DUCK", then the storage version number. The 1.5 CLI
    # reads 64 to 68; the `duckdb` package writes a newer one unless told otherwise.
    header = (wh.root / CATALOG_FILE).read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert 64 <= struct.unpack("<Q", header[12:20])[0] <= 68
