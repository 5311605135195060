"""The select stage as a plain function: verified samples in, one stored RSFT selection out."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from distillery.curate.select_config import SelectConfig
from distillery.curate.selection import (
    SelectionReport,
    load_candidates,
    model_id_of,
    select,
    selection_record,
)
from distillery.filters.verification import VerifyError
from distillery.warehouse.records import SelectionRecord
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


def select_stage(
    config: SelectConfig, root: Path, console: Console
) -> tuple[SelectionReport, SelectionRecord]:
    """Select and store the targets; returns the report and the stored selection."""
    wh = Warehouse.open_existing(root)
    model_id = model_id_of(wh, config.model)
    candidates = load_candidates(wh, config.suite, model_id, config.split)
    if not candidates:
        raise VerifyError(
            f"no verified samples of {config.model} match; run `distillery verify` first"
        )
    report = select(candidates, config)
    with recorded_run(wh, "select", config.as_params()) as run_id:
        record = selection_record(config, (config.suite, model_id, config.split), report, run_id)
        # Written even when an equal selection exists: the newer copy makes it the latest
        # for its scope (the table keeps the last copy of a selection).
        wh.write([record])
    per_family = ", ".join(f"{f} {n}" for f, n in sorted(report.per_family.items()))
    console.print(
        f"{report.prompts} prompts: [bold]{len(report.selected)}[/] targets "
        f"({per_family or 'none'}); {report.prompts_without_pass} prompts had no passing "
        f"sample, {report.duplicates_dropped} duplicates dropped, {report.capped} over the caps"
        f"\nselection {record.selection_id}"
    )
    return report, record
