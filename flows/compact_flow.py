"""The `compact` flow: merge each run folder's small Parquet files into one, on a schedule.

Thin: `warehouse/compact.py` does the work (and says why it is safe beside writers and
readers); this flow leaves its report as a markdown artifact. `distillery serve` runs it
daily (`compact/daily`); `distillery compact` runs the same function without a flow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from distillery.flows import artifacts
from distillery.flows.run_names import run_name
from distillery.warehouse.compact import CompactReport
from distillery.warehouse.rollup import describe
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE


def compact_md(report: CompactReport) -> str:
    if report.busy:
        return "## Compaction\n\nAnother compaction of this warehouse was running: nothing done.\n"
    merged = sum(t.folders_merged for t in report.tables)
    dropped = sum(t.copies_dropped for t in report.tables)
    text = (
        f"## Compaction\n\n**{report.files_before} → {report.files_after}** data files, "
        f"{merged} run folders merged"
        + (f", {dropped} copies left by an interrupted compaction dropped" if dropped else "")
        + f", in {report.seconds:.1f}s.\n\n"
    )
    rows = [
        (t.table, f"{t.files_before} → {t.files_after}", t.rows)
        for t in report.tables
        if t.files_before
    ]
    if rows:
        text += artifacts.md_table(["table", "files", "rows"], rows) + "\n"
    skipped = [f"- {t.table}/{why}" for t in report.tables for why in t.skipped]
    if skipped:
        text += "\nLeft as they were:\n\n" + "\n".join(skipped) + "\n"
    if report.rollup is not None:
        text += f"\n{describe(report.rollup)}.\n"
    return text


@flow(name="compact", flow_run_name=run_name("compact", "tables"))
def compact_flow(warehouse: str = WAREHOUSE, tables: list[str] | None = None) -> dict[str, Any]:
    """Merge each run folder's small Parquet files into one (every table by default)."""
    from distillery.warehouse.compact import compact

    report = compact(Path(warehouse), tables)
    artifacts.publish_markdown("compact-summary", compact_md(report))
    return {
        "busy": report.busy,
        "files_before": report.files_before,
        "files_after": report.files_after,
        "rows": report.rows,
        "seconds": round(report.seconds, 3),
    }
