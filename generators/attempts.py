"""What a strategy sees of its draws: each sample verified (if it still lacks a verdict) and
read back from the warehouse as an `Attempt`."""

from __future__ import annotations

from collections.abc import Sequence

from distillery.filters.registry import Verifiers
from distillery.filters.verification import run_verify, select_pending
from distillery.generators.base import Attempt
from distillery.warehouse.store import Warehouse


def verified_attempts(
    wh: Warehouse, verifiers: Verifiers, sample_ids: Sequence[str], run_id: str, workers: int
) -> dict[str, Attempt]:
    """Verify whichever of `sample_ids` lack a verdict, then each one's latest verdict as an
    Attempt. Ids a sandbox fault left without a verdict are absent (a rerun retries them)."""
    if not sample_ids:
        return {}
    pending, _ = select_pending(wh, None, None, None, verifiers, sample_ids=sample_ids)
    run_verify(wh, pending, verifiers, run_id, workers)
    rows = wh.query(
        "SELECT sample_id, prompt_id, text, passed, reason, detail, completion_tokens, "
        "latency_s + coalesce(verify_seconds, 0) FROM sample_outcomes "
        "WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(sample_ids)],
    )
    return {
        sid: Attempt(sid, pid, text, bool(passed), reason, detail or "", tokens, secs)
        for sid, pid, text, passed, reason, detail, tokens, secs in rows
        if passed is not None
    }
