"""Resume planning: the (prompt, index) pairs with no sample yet, found by hashing every
asked id in DuckDB and anti-joining with the samples files (or a compaction's roll-up of
their keys plus the files written since). It must ask for exactly what the Python ids say
is missing: same parameters, model, context and index, nothing else."""

from __future__ import annotations

import random

import duckdb
import pytest

from distillery.generators.base import SamplingParams
from distillery.generators.contexts import Context
from distillery.generators.sampling import PromptRow, plan
from distillery.warehouse.compact import compact
from distillery.warehouse.ids import id_of_canonical, id_sql
from distillery.warehouse.records import SampleRecord
from distillery.warehouse.store import Warehouse

MODEL = 'mdl-ünïcode "quoted" 模型'


def _sample(params: SamplingParams, prompt_id: str, idx: int, context: str | None) -> SampleRecord:
    return SampleRecord(
        sample_id=params.sample_id(prompt_id, MODEL, idx, context),
        prompt_id=prompt_id,
        model_id=MODEL,
        run_id="run-a",
        backend="transformers",
        idx=idx,
        seed=params.seed,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        text="x",
        prompt_tokens=1,
        completion_tokens=1,
        finish_reason="stop",
        latency_s=0.0,
        procedure="sample" if context is None else "prompted",
        context_id=context,
    )


def test_the_sql_id_is_the_python_id():
    texts = ['["a",1]', '["ünï \\"q\\" 模型",2.5,{"k":null}]', "", "x" * 5000]
    con = duckdb.connect()
    for text in texts:
        got = con.execute(f"SELECT {id_sql('smp', '?')}", [text]).fetchone()[0]
        assert got == id_of_canonical("smp", text)


@pytest.mark.parametrize("compacted", [False, True], ids=["files", "rollup"])
def test_plan_asks_for_exactly_the_missing_draws(tmp_path, compacted):
    wh = Warehouse.open(tmp_path / "wh")
    params = SamplingParams(n=6, temperature=0.7, top_p=0.9, max_new_tokens=32, seed=3)
    other = SamplingParams(n=6, temperature=0.5, top_p=0.9, max_new_tokens=32, seed=3)
    prompts = [
        PromptRow(f"prm-{i:03d}", "number" if i % 2 else "date", (("user", f"q{i} ü"),))
        for i in range(40)
    ]
    rng = random.Random(7)
    present = {(p.prompt_id, i) for p in prompts for i in range(6) if rng.random() < 0.5}
    rows = [_sample(params, pid, i, None) for pid, i in sorted(present)]
    rows.append(rows[0])  # a copy of a draw (a retried write) counts once
    # Other parameters' draws of the same prompts and indices are not these draws.
    rows += [_sample(other, p.prompt_id, i, None) for p in prompts for i in range(6)]
    wh.write(rows)
    if compacted:
        # The draws so far are read from the roll-up's keys (`model_sample_ids_sql`); the
        # ones written below from the files it does not cover.
        assert compact(wh.root, grace_s=0).rollup is not None

    requests, already = plan(wh, prompts, MODEL, params, first=1)
    want = {
        p.prompt_id: tuple(i for i in range(1, 6) if (p.prompt_id, i) not in present)
        for p in prompts
    }
    assert [(r.prompt_id, r.indices) for r in requests] == [
        (pid, idx) for pid, idx in want.items() if idx
    ]
    assert already == sum(1 for pid, i in present if i >= 1)
    messages = {p.prompt_id: p.messages for p in prompts}
    assert all(r.context is None and r.messages == messages[r.prompt_id] for r in requests)

    # Everything drawn: nothing asked for, every draw counted.
    wh.write([_sample(params, pid, i, None) for pid, idx in want.items() for i in idx])
    assert plan(wh, prompts, MODEL, params, first=1) == ([], 40 * 5)
    assert plan(wh, prompts, MODEL, params, first=6) == ([], 0)


def test_plan_with_contexts_keys_on_the_context(tmp_path):
    wh = Warehouse.open(tmp_path / "wh")
    params = SamplingParams(n=3)
    prompts = [PromptRow(f"prm-{i}", "number", (("user", f"q{i}"),)) for i in range(4)]
    ctx = Context("c", "s", "number", "Reply with a number.", (("1+1", "2"),), ("prm-0",))
    cid = ctx.context_id
    # prm-1 has its bare draws and one prompted draw; only prompted ones count here.
    wh.write([_sample(params, "prm-1", i, None) for i in range(3)])
    wh.write([_sample(params, "prm-1", 2, cid)])
    requests, already = plan(wh, prompts, MODEL, params, contexts={"number": ctx})
    assert [(r.prompt_id, r.indices, r.context) for r in requests] == [
        ("prm-1", (0, 1), cid),
        ("prm-2", (0, 1, 2), cid),
        ("prm-3", (0, 1, 2), cid),
    ]  # prm-0 is the context's exemplar: never drawn with its own answer in view
    assert already == 1
    assert requests[0].messages == ctx.apply((("user", "q1"),))


def test_imported_ids_are_the_content_ids_they_always_were():
    from distillery.generators.sample_stage import IMPORTED, imported_columns
    from distillery.warehouse.ids import content_id

    rows = [("prm-a", "x"), ('prm-ü "q"', "y"), ("prm-a", "z"), ("prm-a", "w")]
    cols = imported_columns(rows, "mdl-ext 模型", "run-1")
    assert cols["idx"] == [0, 0, 1, 2]
    assert cols["sample_id"] == [
        content_id("smp", p, "mdl-ext 模型", IMPORTED, 0, i)
        for (p, _), i in zip(rows, cols["idx"], strict=True)
    ]
    assert IMPORTED == {"imported": True}  # changing it would change every imported id
