"""Sample k completions per prompt from a model into the warehouse, resumably.

Every (prompt, index) has a content-hashed sample_id; a run first asks the warehouse
which of its ids exist and samples only the rest, writing one Parquet file per finished
batch. A rerun after a crash or `kill -9` therefore picks up where the last whole batch
ended, and never writes a finished (prompt, index) twice.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from distillery.generators.base import (
    Backend,
    Completion,
    ProgressFn,
    SampleRequest,
    SamplingError,
    SamplingParams,
)
from distillery.generators.contexts import Context
from distillery.generators.interrupt import check as check_interrupt
from distillery.generators.model_registry import ResolvedModel
from distillery.warehouse.catalog_duckdb import model_sample_ids_sql
from distillery.warehouse.ids import id_sql
from distillery.warehouse.records import SampleRecord
from distillery.warehouse.store import Warehouse


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    family: str
    messages: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Drawing:
    """Who draws and where the draws go: the backend and model that sample, the
    warehouse and run that keep every completion, and the progress callback to tell."""

    wh: Warehouse
    backend: Backend
    model: ResolvedModel
    run_id: str
    progress: ProgressFn | None = None


@dataclass(frozen=True)
class SampleSummary:
    prompts: int
    requested: int  # prompts × k
    already: int  # found in the warehouse before this run
    written: int
    tokens: int
    seconds: float
    per_family: dict[str, int]


def select_prompts(
    wh: Warehouse,
    suite: str,
    split: str | None,
    limit: int | None = None,
    per_family: int | None = None,
) -> list[PromptRow]:
    """Prompts of a suite (and split), in a stable order; errors name the fix."""
    if limit is not None and limit < 1:
        raise SamplingError(f"--limit must be at least 1 (got {limit})")
    if per_family is not None and per_family < 1:
        raise SamplingError(f"--per-family must be at least 1 (got {per_family})")
    suites = [r[0] for r in wh.query("SELECT DISTINCT suite FROM prompts ORDER BY 1")]
    if suite not in suites:
        have = ", ".join(suites) or "none loaded yet"
        raise SamplingError(
            f"no prompts for suite {suite!r} (loaded: {have}); "
            f"run `distillery prompts load {suite}` first"
        )
    sql = "SELECT prompt_id, family, messages FROM prompts WHERE suite = ?"
    params: list[object] = [suite]
    if split:
        sql += " AND split = ?"
        params.append(split)
    if per_family:
        sql += (
            " QUALIFY row_number() OVER (PARTITION BY family ORDER BY prompt_id)"
            f" <= {int(per_family)}"
        )
    sql += " ORDER BY family, prompt_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = wh.query(sql, params)
    if not rows:
        raise SamplingError(
            f"suite {suite!r} has no prompts in split {split!r}; pick another --split"
        )
    return [_row(pid, fam, msgs) for pid, fam, msgs in rows]


def _row(prompt_id: str, family: str, messages: str) -> PromptRow:
    return PromptRow(
        prompt_id, family, tuple((m["role"], m["content"]) for m in json.loads(messages))
    )


def plan(
    wh: Warehouse,
    prompts: Sequence[PromptRow],
    model_id: str,
    params: SamplingParams,
    first: int = 0,
    contexts: Mapping[str, Context] | None = None,
) -> tuple[list[SampleRequest], int]:
    """Requests for the (prompt, index) pairs in [first, k) not yet in the warehouse, and
    how many are. With `contexts`, each prompt is drawn with its family's context before
    it (a prompt that is one of the context's exemplars is skipped)."""
    ctx = contexts_for(prompts, contexts)
    asked = [p for p in prompts if p.prompt_id in ctx]
    todo = _missing(wh, asked, ctx, model_id, params, first)
    by_id = contexts_by_id(contexts)
    requests = []
    for pos, indices in todo:
        p = asked[pos]
        cid = ctx[p.prompt_id]
        messages = p.messages if cid is None else by_id[cid].apply(p.messages)
        requests.append(SampleRequest(p.prompt_id, messages, indices, cid))
    wanted = len(asked) * max(0, params.n - first)
    return requests, wanted - sum(len(r.indices) for r in requests)


def _missing(
    wh: Warehouse,
    asked: Sequence[PromptRow],
    ctx: Mapping[str, str | None],
    model_id: str,
    params: SamplingParams,
    first: int,
) -> list[tuple[int, tuple[int, ...]]]:
    """(position in `asked`, its indices with no sample yet), in `asked` order.

    DuckDB hashes every asked (prompt, index) into its sample id, exactly as
    `SamplingParams.sample_id` does, and anti-joins them with the ids in the samples
    files: only what is missing comes back, whatever the size of the history.
    """
    if not asked or first >= params.n:
        return []
    texts = [params.id_text(p.prompt_id, model_id, ctx[p.prompt_id]) for p in asked]
    table = pa.table(
        {
            "pos": pa.array(range(len(asked)), pa.int64()),
            "head": [h for h, _ in texts],
            "tail": [t for _, t in texts],
        }
    )
    sample_id = id_sql("smp", "a.head || r.idx::VARCHAR || a.tail")

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        source = model_sample_ids_sql(wh.root, model_id, wh.rollup())
        con.register("asked_prompts", table)
        return con.execute(
            f"WITH asked AS (SELECT a.pos, r.idx, {sample_id} AS sample_id "
            f"FROM asked_prompts a, range(?, ?) r(idx)) "
            f"SELECT pos, list(idx ORDER BY idx) FROM asked "
            f"ANTI JOIN {source} s USING (sample_id) "
            f"GROUP BY pos ORDER BY pos",
            [first, params.n],
        ).fetchall()

    rows = wh.read(read)
    return [(int(pos), tuple(int(i) for i in idx)) for pos, idx in rows]


def contexts_by_id(contexts: Mapping[str, Context] | None) -> dict[str, Context]:
    return {c.context_id: c for c in (contexts or {}).values()}


def contexts_for(
    prompts: Sequence[PromptRow], contexts: Mapping[str, Context] | None
) -> dict[str, str | None]:
    """prompt_id -> context_id (None: the bare prompt); prompts left out get no draws."""
    if contexts is None:
        return {p.prompt_id: None for p in prompts}
    out: dict[str, str | None] = {}
    for p in prompts:
        c = contexts.get(p.family)
        # An exemplar's own answer is in its context: drawing it there would be copying.
        if c is not None and p.prompt_id not in c.exemplar_ids:
            out[p.prompt_id] = c.context_id
    return out


def to_record(
    c: Completion,
    model_id: str,
    params: SamplingParams,
    backend: str,
    run_id: str,
    context: str | None = None,
) -> SampleRecord:
    return SampleRecord(
        sample_id=params.sample_id(c.prompt_id, model_id, c.idx, context),
        prompt_id=c.prompt_id,
        model_id=model_id,
        run_id=run_id,
        backend=backend,
        idx=c.idx,
        seed=params.seed,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        text=c.text,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        finish_reason=c.finish_reason,
        latency_s=c.latency_s,
        procedure="sample" if context is None else "prompted",
        context_id=context,
    )


def run_sampling(
    drawing: Drawing,
    prompts: Sequence[PromptRow],
    params: SamplingParams,
    *,
    on_plan: Callable[[int], None] | None = None,
    first: int = 0,
    contexts: Mapping[str, Context] | None = None,
) -> SampleSummary:
    """Draw indices [first, params.n) of each prompt that the warehouse lacks; with
    `contexts`, as "prompted" draws with the family's context before the prompt."""
    wh, backend, model, run_id = drawing.wh, drawing.backend, drawing.model, drawing.run_id
    started = time.perf_counter()
    requests, already = plan(wh, prompts, model.model_id, params, first, contexts)
    if on_plan is not None:  # how many draws are missing: a progress bar's total
        on_plan(sum(len(r.indices) for r in requests))
    family = {p.prompt_id: p.family for p in prompts}
    context = {r.prompt_id: r.context for r in requests}
    written = tokens = 0
    per_family: dict[str, int] = defaultdict(int)
    if requests:
        for batch in backend.generate(requests, params, drawing.progress):
            # The batch is written first: what was drawn before a Ctrl-C is kept for a rerun.
            wh.write(
                [
                    to_record(c, model.model_id, params, backend.name, run_id, context[c.prompt_id])
                    for c in batch
                ]
            )
            written += len(batch)
            tokens += sum(c.completion_tokens for c in batch)
            check_interrupt()
            for c in batch:
                per_family[family[c.prompt_id]] += 1
    return SampleSummary(
        prompts=len(prompts),
        requested=len(prompts) * (params.n - first),
        already=already,
        written=written,
        tokens=tokens,
        seconds=time.perf_counter() - started,
        per_family=dict(per_family),
    )


def prompts_by_id(wh: Warehouse, prompt_ids: Sequence[str]) -> list[PromptRow]:
    """The named prompts as PromptRows, in the order given; unknown ids are an error."""
    rows = wh.query(
        "SELECT prompt_id, family, messages FROM prompts WHERE prompt_id IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [list(prompt_ids)],
    )
    found = {pid: _row(pid, fam, msgs) for pid, fam, msgs in rows}
    missing = [p for p in prompt_ids if p not in found]
    if missing:
        raise SamplingError(
            f"{len(missing)} prompt id(s) not in the warehouse (first: {missing[0]})"
        )
    return [found[p] for p in prompt_ids]


def shard(items: Sequence[str], size: int, max_shards: int) -> list[list[str]]:
    """Consecutive chunks of about `size`, grown so that there are at most `max_shards`."""
    if size < 1:
        raise SamplingError(f"--shard-prompts must be at least 1 (got {size})")
    size = max(size, -(-len(items) // max_shards))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
