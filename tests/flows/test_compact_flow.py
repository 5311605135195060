"""The `compact` flow's artifact: what it merged per table, or that another was running."""

from __future__ import annotations

from pathlib import Path

from distillery.flows.compact_flow import compact_flow, compact_md
from distillery.warehouse.compact import CompactReport, TableCompaction
from distillery.warehouse.rollup import Snapshot


def test_compact_md_lists_the_tables_with_files_and_what_was_left():
    report = CompactReport(
        Path("wh"),
        (
            TableCompaction("samples", 40, 2, 900, 2, 3),
            TableCompaction("models", 0, 0, 0, 0, 0),
            TableCompaction("runs", 5, 3, 5, 1, 0, ("run-x: y.parquet was removed meanwhile",)),
        ),
        1.5,
    )
    assert compact_md(report) == (
        "## Compaction\n\n**45 → 5** data files, 3 run folders merged, 3 copies left by an "
        "interrupted compaction dropped, in 1.5s.\n\n"
        "| table | files | rows |\n|---|---|---|\n"
        "| samples | 40 → 2 | 900 |\n| runs | 5 → 3 | 5 |\n"
        "\nLeft as they were:\n\n- runs/run-x: y.parquet was removed meanwhile\n"
    )
    snapshot = Snapshot("s1", Path("wh/rollups/s1"), {}, 1_200, 900, 75, 16)
    with_rollup = CompactReport(Path("wh"), report.tables[:1], 2.0, rollup=snapshot)
    assert compact_md(with_rollup).endswith(
        "\nroll-up: 1,200 samples (16 unverified), 75 prompt outcomes.\n"
    )
    busy = CompactReport(Path("wh"), (), 0.0, busy=True)
    assert "Another compaction of this warehouse was running" in compact_md(busy)


def test_the_flow_takes_a_warehouse_and_optional_tables():
    schema = compact_flow.parameters.model_dump()
    assert set(schema["properties"]) == {"warehouse", "tables"}
    assert not schema.get("required")  # both have defaults: the schedule passes only one
