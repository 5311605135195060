"""The pairs job as a plain function: verified samples in, preference pairs in the warehouse."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from distillery.curate.pairs import PairConfig, PairReport, build_pairs
from distillery.curate.selection import load_candidates
from distillery.filters.verification import VerifyError
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


def pairs_job(
    config: PairConfig,
    root: Path,
    console: Console,
    suite: str | None = None,
    model: str | None = None,
    split: str | None = "train",
) -> tuple[PairReport, int]:
    """Build and store the pairs; returns the report and how many pairs were new."""
    wh = Warehouse.open_existing(root)
    candidates = load_candidates(wh, suite, model, split)
    if not candidates:
        raise VerifyError("no verified samples match; run `distillery verify` first")
    report = build_pairs(candidates, config)
    params = {**asdict(config), "suite": suite, "model": model, "split": split}
    with recorded_run(wh, "pairs", params) as run_id:
        records = [p.to_record(config.strategy, run_id) for p in report.pairs]
        have = wh.existing("pairs", "pair_id", (r.pair_id for r in records))
        new = [r for r in records if r.pair_id not in have]
        wh.write(new)
    console.print(
        f"{report.prompts} prompts: [bold]{len(report.pairs)}[/] pairs ({len(new)} new), "
        f"{report.all_pass} all-pass and {report.all_fail} all-fail prompts gave none, "
        f"{report.no_contrast} had no pair past the margin or with distinct texts"
    )
    return report, len(new)
