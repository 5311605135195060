"""The verify stage as a plain function: select unverified samples, verify, summarise."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distillery.filters import reasons
from distillery.filters.registry import Verifiers
from distillery.filters.verification import VerifySummary, run_verify, select_pending
from distillery.filters.verify_config import VerifyConfig
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse

CountFn = Callable[[int, int], None]  # (done, total)


def verify_stage(
    job: VerifyConfig, root: Path, console: Console, on_progress: CountFn | None = None
) -> VerifySummary:
    """Verify what has no verdict yet, print a summary. `on_progress(done, total)` hears
    of every verified sample too (the flow shows it in the UI)."""
    from distillery.console.progress import count_bar

    wh = Warehouse.open_existing(root)
    workers = job.workers or 2 * (os.cpu_count() or 1)
    # Programs never see the warehouse (or anything else of the host): see filters/sandbox/root.py.
    verifiers = Verifiers(workers=workers)
    try:
        pending, already = select_pending(wh, job.suite, job.model, job.split, verifiers)
        with (
            recorded_run(wh, "verify", job.as_params()) as run_id,
            count_bar(console, "verifying", len(pending), on_progress) as advance,
        ):
            summary = run_verify(wh, pending, verifiers, run_id, workers, advance)
        summary.already = already
    finally:
        verifiers.close()
    print_summary(console, summary)
    return summary


def print_summary(console: Console, s: VerifySummary) -> None:
    console.print(
        f"{s.selected + s.already} samples: {s.already} already verified, "
        f"[bold]{s.written}[/] verdicts written in {s.seconds:.1f}s"
        + (f", {s.faults} sandbox/judge faults left for a rerun" if s.faults else "")
    )
    if not s.per_family:
        return
    table = Table("family", "verified", "pass rate", "reasons")
    for fam in sorted(s.per_family):
        c = s.per_family[fam]
        counts = ", ".join(f"{r} {c.reasons[r]}" for r in reasons.ALL if c.reasons.get(r))
        table.add_row(fam, str(c.verified), f"{c.pass_rate:.1%}", counts)
    console.print(table)
