"""The pairs stage as a plain function: verified samples in, preference pairs in the
warehouse."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from distillery.curate.pairs import PairReport, build_pairs
from distillery.curate.pairs_config import PairsConfig
from distillery.curate.selection import load_candidates
from distillery.filters.verification import VerifyError
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


def pairs_stage(config: PairsConfig, root: Path, console: Console) -> tuple[PairReport, int]:
    """Build and store the pairs; returns the report and how many pairs were new."""
    wh = Warehouse.open_existing(root)
    candidates = load_candidates(wh, config.suite, config.model, config.split)
    if not candidates:
        raise VerifyError("no verified samples match; run `distillery verify` first")
    report = build_pairs(candidates, config)
    with recorded_run(wh, "pairs", config.as_params()) as run_id:
        records = [p.to_record(config.pairing, run_id) for p in report.pairs]
        have = wh.existing("pairs", "pair_id", (r.pair_id for r in records))
        new = [r for r in records if r.pair_id not in have]
        wh.write(new)
    console.print(
        f"{report.prompts} prompts: [bold]{len(report.pairs)}[/] pairs ({len(new)} new), "
        f"{report.all_pass} all-pass and {report.all_fail} all-fail prompts gave none, "
        f"{report.no_contrast} had no pair past the margin or with distinct texts"
    )
    return report, len(new)
