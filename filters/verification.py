"""Verify samples into the `verdicts` table, resumably: only what has no verdict yet for
the current version of its verifier.

Verdicts are written in batches as they finish, so an interrupted run resumes where the
last batch ended. Sandbox and judge faults are not written (they are not the model's
failure): a later run retries them. Every other outcome is written, a verifier that
raised included (`verifier_error`), so no sample is picked again forever.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import pyarrow as pa

from distillery.filters import bounded, pending_rollup
from distillery.filters.base import Verdict
from distillery.filters.registry import Verifiers
from distillery.filters.spec import SpecError, validate_spec
from distillery.warehouse.catalog_duckdb import files_sql
from distillery.warehouse.records import VerdictRecord
from distillery.warehouse.store import Warehouse

FLUSH_EVERY = 512


class VerifyError(ValueError):
    """Bad verification input; the message says what to do."""


@dataclass(frozen=True)
class Pending:
    sample_id: str
    family: str
    spec: dict
    text: str
    verifier: str
    version: str


@dataclass
class FamilyCounts:
    """One family's verdicts in a verify run: how many, how many passed, and per reason."""

    verified: int = 0
    passed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        self.verified += 1
        self.passed += int(verdict.passed)
        self.reasons[verdict.reason] += 1

    @property
    def pass_rate(self) -> float:
        return self.passed / self.verified if self.verified else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for a flow's result and artifacts."""
        return {"verified": self.verified, "passed": self.passed, "reasons": dict(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FamilyCounts:
        return cls(int(d["verified"]), int(d["passed"]), Counter(d["reasons"]))


@dataclass
class VerifySummary:
    selected: int = 0
    already: int = 0
    written: int = 0
    faults: int = 0
    seconds: float = 0.0
    per_family: dict[str, FamilyCounts] = field(default_factory=lambda: defaultdict(FamilyCounts))


def select_pending(
    wh: Warehouse,
    suite: str | None,
    model: str | None,
    split: str | None,
    verifiers: Verifiers,
    sample_ids: Collection[str] | None = None,
) -> tuple[list[Pending], int]:
    """Samples lacking a verdict for their verifier's current version, and how many have one.

    `sample_ids` narrows the selection to those samples (an evaluation's own draws).
    Every spec is validated first, so a malformed one stops the run before any work. The
    anti-join runs in DuckDB over the files' key columns, so the cost follows the samples
    in scope, and only the pending samples' texts come back. Where a compaction left a
    roll-up (`pending_rollup.py`), the samples it covers are answered from its counts and
    only the files written since are read.
    """
    scope, params = "", []
    if sample_ids is not None:
        if not sample_ids:
            return [], 0
        scope += " AND s.sample_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(sample_ids))
    for column, value in (("p.suite", suite), ("p.split", split)):
        if value:
            scope += f" AND {column} = ?"
            params.append(value)
    if model:
        scope += " AND (m.name = ? OR s.model_id = ?)"
        params += [model, model]

    def register(con: duckdb.DuckDBPyConnection, counts: list[tuple[Any, ...]]) -> None:
        """Validate every spec in scope and register their current versions (`current`)."""
        if not counts:
            raise VerifyError(
                "no samples match; run `distillery sample` first or widen the selection"
            )
        for spec_json, _ in counts:
            try:
                specs[spec_json] = validate_spec(json.loads(spec_json))
            except (SpecError, json.JSONDecodeError) as exc:
                raise VerifyError(f"malformed verifier spec in the warehouse: {exc}") from None
        con.register(
            "current",
            pa.table(
                {
                    "spec": list(specs),
                    "verifier": [sp["kind"] for sp in specs.values()],
                    "verifier_version": [verifiers.version(sp) for sp in specs.values()],
                }
            ),
        )

    def read(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[Any, ...]], ...]:
        snapshot = wh.rollup() if not sample_ids else None
        if snapshot is not None:
            answer = pending_rollup.read(con, wh.root, snapshot, scope, params, register)
            if answer is not None:
                return answer
        return _read_files(con, wh, scope, params, register)

    specs: dict[str, dict] = {}
    counts, rows = wh.read(read)
    pending: dict[str, Pending] = {}
    for sid, fam, sj, text in rows:
        spec = specs[sj]
        pending.setdefault(
            sid, Pending(sid, fam, spec, text, spec["kind"], verifiers.version(spec))
        )
    total = sum(n for _, n in counts)
    return list(pending.values()), total - len(pending)


def _read_files(
    con: duckdb.DuckDBPyConnection,
    wh: Warehouse,
    scope: str,
    params: list[Any],
    register: Callable[[duckdb.DuckDBPyConnection, list[tuple[Any, ...]]], None],
) -> tuple[list[tuple[Any, ...]], ...]:
    """Pending samples from every sample and verdict file."""
    # Samples are content rows: a copy of one (two writers racing) is the same sample, so
    # the files are read as they are and the few pending rows deduplicated at the end.
    scoped = (
        f"SELECT s.sample_id, p.family, p.verifier AS spec, s.text "
        f"FROM {files_sql(wh.root, 'samples')} s JOIN prompts p USING (prompt_id) "
        f"LEFT JOIN models m USING (model_id) WHERE true{scope}"
    )
    counts = con.execute(
        f"SELECT spec, count(DISTINCT sample_id) FROM ({scoped}) GROUP BY spec", params
    ).fetchall()
    register(con, counts)
    rows = con.execute(
        f"SELECT sc.sample_id, sc.family, sc.spec, sc.text FROM ({scoped}) sc "
        "JOIN current c USING (spec) "
        f"ANTI JOIN {files_sql(wh.root, 'verdicts')} v "
        "ON v.sample_id = sc.sample_id AND v.verifier = c.verifier "
        "AND v.verifier_version = c.verifier_version ORDER BY sc.sample_id",
        params,
    ).fetchall()
    return counts, rows


def run_verify(
    wh: Warehouse,
    pending: list[Pending],
    verifiers: Verifiers,
    run_id: str,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> VerifySummary:
    """Verify `pending` and store a verdict for each (sandbox and judge faults excepted).

    One sample cannot stop the run: anything a verifier raises becomes that sample's
    `verifier_error` verdict. Whatever stops the run (an interrupt, a failed write), the
    verdicts already made are written before the error propagates.
    """
    summary = VerifySummary(selected=len(pending))
    started = time.perf_counter()
    buffer: list[VerdictRecord] = []

    def one(p: Pending) -> tuple[Pending, Verdict]:
        t0 = time.perf_counter()
        try:
            v = verifiers.verify(p.spec, p.text)
            if not isinstance(v, Verdict):
                raise TypeError(f"a verifier returned {type(v).__name__}, not a Verdict")
        except Exception as exc:
            v = bounded.error_verdict(exc)
        return p, replace(v, seconds=time.perf_counter() - t0)

    def flush() -> None:
        nonlocal buffer
        batch, buffer = buffer, []
        if batch:
            wh.write(batch)
            summary.written += len(batch)

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for p, v in pool.map(one, pending):
            if v.sandbox_fault:
                summary.faults += 1
            else:
                buffer.append(
                    VerdictRecord(
                        sample_id=p.sample_id,
                        verifier=p.verifier,
                        verifier_version=p.version,
                        passed=v.passed,
                        score=v.score,
                        reason=v.reason,
                        detail=v.detail,
                        seconds=v.seconds,
                        run_id=run_id,
                    )
                )
                summary.per_family[p.family].add(v)
            if len(buffer) >= FLUSH_EVERY:
                flush()
            if progress:
                progress(1)
    except BaseException:
        # Do not wait for the queued samples; keep what is done, then let the error out.
        pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):  # the error that stopped the run comes first
            flush()
        raise
    pool.shutdown(wait=True)
    flush()
    summary.seconds = time.perf_counter() - started
    return summary
