"""Compaction: one file per run folder, every view reads the same rows before and after, a
compaction killed before its removals loses nothing and the next drops the copies, and
writers and readers beside a compaction lose or fail nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillery.warehouse import compact as compact_module
from distillery.warehouse.compact import LOCK_FILE, compact
from distillery.warehouse.records import (
    ContextRecord,
    ModelRecord,
    PairRecord,
    PromptRecord,
    SampleRecord,
    VerdictRecord,
)
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse
from distillery.warehouse.tables import TABLES
from distillery.warehouse.writer_parquet import (
    COMPACTED_FROM,
    SCHEMA_DIR,
    SCHEMA_FILE,
    TMP_DIR,
    rows_in_run,
    run_dir,
    table_dir,
)

RUNS = 3
# What the warehouse below holds, per table: data files and rows in them (copies included).
FILES = {
    "prompts": 6,  # 2 per run
    "models": 4,  # base in the first run, tuned twice in the second, base again in the third
    "samples": 14,  # 3 batches and a rewrite per run, and 2 of an older schema in the first
    "verdicts": 6,  # 2 per run
    "pairs": 2,  # in the first run: one now, one of an older schema
    "contexts": 3,  # 1 per run: a folder that holds one file stays as it is
    "runs": 6,  # a start and an end row per run
}
ROWS = {
    "prompts": 12,
    "models": 4,
    "samples": 32,  # 9 + 1 rewritten per run, and 1 + 1 of the older schema
    "verdicts": 27,
    "pairs": 2,
    "contexts": 3,
    "runs": 6,
}
CANNED = [
    "SELECT * FROM sample_outcomes ORDER BY sample_id",
    "SELECT * FROM prompt_outcomes ORDER BY model_id, prompt_id",
    "SELECT model, family, avg(pass_at_k(n, c, 1)), avg(pass_at_k(n, c, 2)) "
    "FROM prompt_outcomes GROUP BY ALL ORDER BY ALL",
    "SELECT * FROM flips('base', 'tuned') ORDER BY prompt_id",
]


def _sample(run_id: str, run: int, i: int, model: str = "mdl-base", procedure: str = "sample"
            ) -> SampleRecord:  # fmt: skip
    return SampleRecord(
        f"smp-{run}-{i}", f"p-{run}-{i % 3}", model, run_id, "test", i, i, 0.8, 0.95, 8,
        f"text {i}", 1, 2, "stop", 0.1, procedure,
    )  # fmt: skip


def _verdict(sample: SampleRecord, passed: bool) -> VerdictRecord:
    return VerdictRecord(
        sample.sample_id, "answer", "1", passed, None, "ok", "", 0.1, sample.run_id
    )


def _model(model_id: str, name: str, promoted: bool, run_id: str) -> ModelRecord:
    return ModelRecord(model_id, name, name, "alias", None, None, None, True, promoted, run_id)


def _write_older(wh: Warehouse, table: str, run_id: str, rows: list[object], drop: str = "",
                 rename: tuple[str, str] = ("", "")) -> None:  # fmt: skip
    """A file as an older writer left it: without `drop`, or with a column's former name."""
    from distillery.warehouse.writer_parquet import to_arrow

    data = to_arrow(TABLES[table], rows)
    if drop:
        data = data.drop_columns([drop])
    new, former = rename
    if new:
        data = data.rename_columns([former if c == new else c for c in data.column_names])
    pq.write_table(
        data, run_dir(wh.root, table, run_id) / f"0-older-{table}-{drop or former}.parquet"
    )


def build(root: Path) -> tuple[Warehouse, list[str]]:
    """Several runs, several files per table and run, a key written twice in a run, and
    files of an older schema; returns the warehouse and its run ids."""
    wh = Warehouse.open(root)
    run_ids = []
    for run in range(RUNS):
        with recorded_run(wh, "test", {"run": run}) as run_id:
            run_ids.append(run_id)
            prompts = [
                PromptRecord(f"p-{run}-{i}", "s", f"fam{i % 2}", "test", "[]", "{}", None, run_id)
                for i in range(4)
            ]
            wh.write(prompts[:2])
            wh.write(prompts[2:])
            if run == 0:
                wh.write([_model("mdl-base", "base", False, run_id)])
            if run == 1:  # the same key twice in a folder, a state change: the last wins
                wh.write([_model("mdl-tuned", "tuned", False, run_id)])
                wh.write([_model("mdl-tuned", "tuned", True, run_id)])
            if run == 2:
                wh.write([_model("mdl-base", "base", True, run_id)])
            samples = [
                _sample(run_id, run, i, "mdl-tuned" if i % 2 else "mdl-base") for i in range(9)
            ]
            verdicts = [_verdict(s, (s.idx + run) % 3 != 0) for s in samples]
            for batch in range(3):
                wh.write(samples[batch * 3 : batch * 3 + 3])
            # Rewritten in the same run with a new created_at: both rows stay, the first reads.
            wh.write([_sample(run_id, run, 0)])
            wh.write(verdicts[:5])
            wh.write(verdicts[5:])
            wh.write([ContextRecord(f"ctx-{run}", "c", "s", "fam0", None, "[]", [], run_id)])
            if run == 0:
                _write_older(wh, "samples", run_id, [_sample(run_id, 0, 20)], drop="context_id")
                older = _sample(run_id, 0, 21, procedure="retry")
                _write_older(wh, "samples", run_id, [older], rename=("procedure", "strategy"))
                pair = PairRecord("pr-1", "p-0-0", "smp-0-0", "smp-0-1", 1.0, "pass-fail", run_id)
                wh.write([pair])
                older_pair = PairRecord("pr-0", "p-0-0", "smp-0-2", "smp-0-1", 0.5, "all", run_id)
                _write_older(wh, "pairs", run_id, [older_pair], rename=("pairing", "strategy"))
    return wh, run_ids


def data_files(root: Path, table: str) -> list[Path]:
    return sorted(
        f for f in table_dir(root, table).glob("*/*.parquet") if f.parent.name != SCHEMA_DIR
    )


def raw_rows(root: Path, table: str) -> int:
    return sum(pq.read_metadata(f).num_rows for f in data_files(root, table))


def views(wh: Warehouse) -> dict[str, list[tuple]]:
    """Every view (the tables', the raw ones, the canned ones) and the canned SQL, each in
    a fixed order."""
    out = {}
    names = wh.query("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")
    for (name,) in names:
        out[name] = wh.query(f"SELECT * FROM {name} ORDER BY ALL")
    for sql in CANNED:
        out[sql] = wh.query(sql)
    assert set(TABLES) | {"sample_outcomes", "prompt_outcomes"} <= set(out)
    return out


def run_rows(root: Path, run_ids: list[str]) -> dict[tuple[str, str], int]:
    return {(t, r): rows_in_run(root, t, r) for t in TABLES for r in run_ids}


def test_every_view_reads_the_same_rows_from_one_file_per_run_folder(tmp_path):
    wh, run_ids = build(tmp_path / "wh")
    assert {t: len(data_files(wh.root, t)) for t in FILES} == FILES
    assert {t: raw_rows(wh.root, t) for t in ROWS} == ROWS
    before, counts = views(wh), run_rows(wh.root, run_ids)
    # What the checks below compare: both copies of a rewritten key, older files' columns.
    assert len(before["samples"]) == 29 and len(before["models"]) == 2
    assert wh.query("SELECT promoted FROM models ORDER BY model_id") == [(True,), (True,)]
    assert wh.query("SELECT procedure FROM samples WHERE sample_id = 'smp-0-21'") == [("retry",)]
    assert wh.query("SELECT pairing FROM pairs WHERE pair_id = 'pr-0'") == [("all",)]
    assert wh.query("SELECT count(*) FROM sample_outcomes WHERE context_id IS NULL") == [(29,)]
    assert len(before[CANNED[1]]) == 18 and before[CANNED[3]]

    report = compact(wh.root, grace_s=0)

    folders = {t: len({f.parent for f in data_files(wh.root, t)}) for t in FILES}
    assert folders == {**dict.fromkeys(FILES, RUNS), "pairs": 1, "models": 3}
    assert {t: len(data_files(wh.root, t)) for t in FILES} == folders
    assert {t.table: (t.files_before, t.files_after, t.rows) for t in report.tables} == {
        **{t: (0, 0, 0) for t in TABLES},
        **{t: (FILES[t], folders[t], ROWS[t]) for t in FILES},
    }
    # prompts, samples, verdicts and runs in each run; models and pairs in one; contexts none
    assert sum(t.folders_merged for t in report.tables) == 4 * RUNS + 2
    assert sum(t.copies_dropped for t in report.tables) == 0 and not report.busy
    # Every distinct row kept, lineage and all; the views, the canned SQL and the footer
    # counts read exactly what they read from the files written.
    assert {t: raw_rows(wh.root, t) for t in ROWS} == ROWS
    assert views(Warehouse.open_existing(wh.root)) == before
    assert views(wh) == before
    assert run_rows(wh.root, run_ids) == counts
    # Today's columns first, a renamed column's former name kept after them; a column some
    # file lacked is nullable now.
    (merged,) = run_dir(wh.root, "samples", run_ids[0]).glob("*.parquet")
    schema = pq.read_schema(merged)
    assert schema.names == [*TABLES["samples"].columns, "strategy"]
    assert schema.field("procedure").nullable and not schema.field("sample_id").nullable
    meta = pq.read_metadata(merged)
    assert meta.num_rows == 12 and meta.row_group(0).num_rows == 12
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert len(json.loads(meta.metadata[COMPACTED_FROM.encode()])) == 6
    assert COMPACTED_FROM.encode() not in (schema.metadata or {})  # no reader carries it
    # Nothing else touched: the schema files, and nothing left in .tmp.
    for t in TABLES:
        assert (table_dir(wh.root, t) / SCHEMA_DIR / SCHEMA_FILE).is_file()
    assert not list((wh.root / TMP_DIR).iterdir())

    again = compact(wh.root, grace_s=0)
    assert sum(t.folders_merged for t in again.tables) == 0
    assert views(wh) == before


def test_a_compaction_killed_before_its_removals_loses_nothing(tmp_path, monkeypatch):
    wh, run_ids = build(tmp_path / "wh")
    before, counts = views(wh), run_rows(wh.root, run_ids)

    def killed(paths):
        raise KeyboardInterrupt("killed after publishing, before removing")

    monkeypatch.setattr(compact_module, "remove_sources", killed)
    with pytest.raises(KeyboardInterrupt):
        compact(wh.root, grace_s=0)
    # Killed as it went to remove the files of the first folder it merged (prompts of the
    # first run): its merged file lies beside them, each of their rows twice, and every
    # reader still reads each row once.
    (first, *_) = sorted({f.parent for f in data_files(wh.root, "prompts")})
    assert len(list(first.glob("*.parquet"))) == 3
    assert raw_rows(wh.root, "prompts") == ROWS["prompts"] + 4
    assert views(wh) == before
    assert run_rows(wh.root, run_ids) == counts
    assert wh.existing("prompts", "prompt_id", ["p-0-0", "p-9-9"]) == {"p-0-0"}

    monkeypatch.undo()
    report = compact(wh.root, grace_s=0)
    by_table = {t.table: t for t in report.tables}
    assert (by_table["prompts"].files_before, by_table["prompts"].files_after) == (7, RUNS)
    assert by_table["prompts"].copies_dropped == 4
    assert sum(t.copies_dropped for t in report.tables) == 4
    assert {t: raw_rows(wh.root, t) for t in ROWS} == ROWS  # no copy left
    assert all(len(data_files(wh.root, t)) == by_table[t].files_after for t in FILES)
    assert views(wh) == before
    assert run_rows(wh.root, run_ids) == counts


def test_a_second_compaction_finds_the_lock_held(tmp_path):
    wh, _ = build(tmp_path / "wh")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, sys
            fh = open({str(wh.root / LOCK_FILE)!r}, "ab")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        report = compact(wh.root, grace_s=0)
        assert report.busy and report.tables == ()
        assert len(data_files(wh.root, "samples")) == FILES["samples"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not compact(wh.root, grace_s=0).busy
    assert len(data_files(wh.root, "samples")) == RUNS


def test_only_the_tables_named_and_a_clear_error_for_others(tmp_path):
    wh, _ = build(tmp_path / "wh")
    report = compact(wh.root, ["samples"], grace_s=0)
    assert [(t.table, t.files_before, t.files_after) for t in report.tables] == [
        ("samples", FILES["samples"], RUNS)
    ]
    assert len(data_files(wh.root, "prompts")) == FILES["prompts"]
    with pytest.raises(ValueError, match="unknown table 'sample'; tables: prompts, models"):
        compact(wh.root, ["sample"])


def test_a_folder_whose_files_clash_is_left_as_it_was_and_said_so(tmp_path):
    wh, run_ids = build(tmp_path / "wh")
    clash = pq.read_table(data_files(wh.root, "samples")[-1])
    clash = clash.set_column(clash.schema.get_field_index("idx"), "idx", pa.array(["one"]))
    folder = run_dir(wh.root, "samples", run_ids[1])
    pq.write_table(clash.slice(0, 1), folder / "x-clash.parquet")
    before = sorted(folder.iterdir())
    report = compact(wh.root, ["samples"], grace_s=0)
    (samples,) = report.tables
    assert (samples.files_before, samples.files_after) == (FILES["samples"] + 1, 2 + 5)
    assert samples.folders_merged == 2 and len(samples.skipped) == 1
    assert samples.skipped[0].startswith(f"{run_ids[1]}: Unable to merge: Field idx has")
    assert sorted(folder.iterdir()) == before


def test_row_groups_are_full_however_small_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(compact_module, "ROW_GROUP_ROWS", 5)
    wh, run_ids = build(tmp_path / "wh")
    compact(wh.root, ["samples"], grace_s=0)
    (merged,) = run_dir(wh.root, "samples", run_ids[0]).glob("*.parquet")
    meta = pq.read_metadata(merged)  # 12 rows from 6 files of 1 to 3 rows
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 2]


WRITER = """
import sys, time
from distillery.warehouse.records import PromptRecord, SampleRecord, VerdictRecord
from distillery.warehouse.store import Warehouse

wh = Warehouse.open_existing(sys.argv[1])
batches, rows = int(sys.argv[2]), int(sys.argv[3])
wh.write([PromptRecord("p", "s", "f", "train", "[]", "{}", None, "run-p")])
for b in range(batches):
    wh.write([
        SampleRecord(f"s-{b}-{i}", "p", "m", f"run-{b % 2}", "t", i, 0, 0.8, 0.9, 8, "x" * 50,
                     1, 1, "stop", 0.1)
        for i in range(rows)
    ])
    # Verified after they were written: prompt_outcomes counts them from then on.
    wh.write([
        VerdictRecord(f"s-{b}-{i}", "regex", "1", i % 2 == 0, None, "ok", "", 0.0, f"run-{b % 2}")
        for i in range(rows)
    ])
    time.sleep(0.01)
"""

READER = """
import sys, time
from pathlib import Path
from distillery.warehouse.store import Warehouse

wh = Warehouse.open_existing(sys.argv[1])
stop = Path(sys.argv[2])
last = reads = last_verified = 0
while not stop.exists():
    (n,) = wh.query("SELECT count(*) FROM samples")[0]
    # Rows are only added: a count that fell would be a row lost to a reader, here or in
    # prompt_outcomes, which switches to each new roll-up a compaction writes.
    assert n >= last, (n, last)
    (verified,) = wh.query("SELECT coalesce(sum(n), 0) FROM prompt_outcomes")[0]
    assert last_verified <= verified <= wh.query("SELECT count(*) FROM samples")[0][0]
    last_verified = verified
    if n:
        assert wh.existing("samples", "sample_id", ["s-0-0"]) == {"s-0-0"}
        assert wh.arrow("SELECT sample_id FROM samples WHERE sample_id = 's-0-0'").num_rows == 1
    last, reads = n, reads + 1
print(reads)
"""


@pytest.mark.soak
def test_writers_and_readers_beside_compactions_lose_and_fail_nothing(tmp_path):
    wh = Warehouse.open(tmp_path / "wh")
    batches, rows = 120, 5
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(wh.root), str(batches), str(rows)],
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh.root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        merged = 0
        while writer.poll() is None:
            report = compact(wh.root, ["samples", "verdicts"], grace_s=0.05)
            merged += report.tables[0].folders_merged
            time.sleep(0.05)
        assert writer.returncode == 0, writer.stderr.read()
        compact(wh.root, ["samples", "verdicts"], grace_s=0.05)
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        stop.touch()
        for proc in (writer, reader):
            if proc.poll() is None:
                proc.kill()
    assert reader.returncode == 0, err
    assert int(out) > 0 and merged >= 2  # reads and merges overlapped
    total = batches * rows
    assert wh.query("SELECT count(*) FROM samples") == [(total,)]
    passed = batches * ((rows + 1) // 2)
    assert wh.query("SELECT sum(n), sum(c) FROM prompt_outcomes") == [(total, passed)]
    assert raw_rows(wh.root, "samples") == total
    assert [len(list(run_dir(wh.root, "samples", f"run-{i}").iterdir())) for i in (0, 1)] == [1, 1]
    per_run = Counter(f"run-{b % 2}" for b in range(batches) for _ in range(rows))
    assert {r: rows_in_run(wh.root, "samples", r) for r in per_run} == per_run
