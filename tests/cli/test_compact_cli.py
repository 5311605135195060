"""`distillery compact` in-process: the table it prints, its exit codes, and one `error:`
line for a table that does not exist."""

from __future__ import annotations

from distillery.warehouse.compact import LOCK_FILE
from distillery.warehouse.records import RunRecord, utcnow
from distillery.warehouse.tables import TABLES
from tests.cli.test_options import run


def _runs(wh, batches: int) -> None:
    for i in range(batches):
        wh.write([RunRecord(f"run-{i % 2}", "f", "{}", "v", utcnow(), None, "running", None)])


def test_compact_prints_files_before_and_after_per_table(monkeypatch, capsys, wh):
    _runs(wh, 6)
    code, out, err = run(monkeypatch, capsys, "compact", "--warehouse", str(wh.root))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert [line.split() for line in lines if "│" in line and "runs" in line] == [
        ["│", "runs", "│", "6", "→", "2", "│", "6", "│"]
    ]
    rows = "\n".join(line for line in lines if "│" in line)
    assert not any(t in rows for t in TABLES if t != "runs")  # only tables with files
    assert lines[-2].startswith("6 → 2 files, 2 run folders merged in ")
    # Prompts, samples and verdicts were compacted (none yet): their roll-up is written.
    assert lines[-1] == "roll-up: 0 samples (0 unverified), 0 prompt outcomes"
    assert len(list((wh.root / "tables" / "runs").glob("run-*/*.parquet"))) == 2

    code, out, _ = run(
        monkeypatch, capsys, "compact", "--table", "runs", "--table", "samples",
        "--warehouse", str(wh.root),
    )  # fmt: skip
    assert code == 0
    assert "│ samples │ 0 → 0 │ 0    │" in out and "│ runs    │ 2 → 2 │ 6    │" in out
    assert out.splitlines()[-2].startswith("2 → 2 files, 0 run folders merged in ")
    assert out.splitlines()[-1].startswith("roll-up: 0 samples")

    # Runs alone: nothing a roll-up summarizes, so none is written.
    code, out, _ = run(
        monkeypatch, capsys, "compact", "--table", "runs", "--warehouse", str(wh.root)
    )
    assert code == 0 and out.splitlines()[-1].startswith("2 → 2 files, 0 run folders merged in ")


def test_an_unknown_table_is_one_error_line_and_exit_2(monkeypatch, capsys, wh):
    _runs(wh, 2)
    code, out, err = run(
        monkeypatch, capsys, "compact", "--table", "runs", "--table", "sample",
        "--warehouse", str(wh.root),
    )  # fmt: skip
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert line.startswith(
        f"error: Invalid value for '--table': unknown table 'sample'; tables: "
        f"{', '.join(TABLES)} (see `"
    )
    assert line.endswith("compact --help`)")  # the program's name as pytest was started
    assert len(list((wh.root / "tables" / "runs").glob("run-*/*.parquet"))) == 2  # untouched


def test_no_warehouse_or_one_being_compacted_is_one_error_line_and_exit_1(
    monkeypatch, capsys, wh, tmp_path
):
    code, out, err = run(monkeypatch, capsys, "compact", "--warehouse", str(tmp_path / "none"))
    assert (code, out) == (1, "")
    assert err.startswith("error: no warehouse at ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()

    import fcntl

    with open(wh.root / LOCK_FILE, "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another open file: flock conflicts
        code, out, err = run(monkeypatch, capsys, "compact", "--warehouse", str(wh.root))
    assert (code, out) == (1, "")
    assert err.strip() == f"error: another compaction of {wh.root} is running; nothing was done"
