import subprocess
import sys
import textwrap

import duckdb

from distillery.warehouse.catalog_duckdb import CATALOG_FILE
from distillery.warehouse.records import ModelRecord, RunRecord, utcnow


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
