"""The warehouse as nightly flows grow it: the same suite, a new model each round.

`benchmarks/warehouse.py` grows one model's suite with the rows (N/16 prompts at N rows),
so its resume planning asks for 10x the draws at 10M rows: 10x the work, not only 10x
the history. Here the work is held fixed and only the history grows, which is how users
get to millions of rows: one suite of `--suite-rows` draws (1M: 62,500 prompts x 16, plus
one new prompt with no draw yet), sampled and verified once per round by a new model,
R = N / suite-rows rounds for each N in `--sizes` (1M,10M: 1 and 10 rounds, 10 and 100
files a table of 100k rows, as compaction leaves them). The rows are made in DuckDB (ids
hashed as `SamplingParams.sample_id` does) and written with `Warehouse.write_table`.

At each point, fresh handles (what each CLI command pays), variants rotated, medians of
`--repeats`, in three states:

1. `files`: as written, no roll-up;
2. `rollup`: after `compact`, which writes the roll-up (`warehouse/rollup.py`);
3. `rollup+delta`: then the newest model's 16 draws of the new prompt, and for the
   pass@k query their 16 verdicts too: rows the roll-up does not cover.

Measures: pass@k per family through `Warehouse.query`; the same through `distillery sql`;
resume planning as `distillery sample` does it for the newest model (`select_prompts` +
`plan`: the 16 missing draws of the new prompt); verify planning as `distillery verify`
does it (`select_pending`: the 16 unverified draws); and the floor, DuckDB reading the
files directly (no dedup, no views). Each answer is checked against the floor or the
expected counts first.

    python benchmarks/warehouse_history.py [--sizes 1M,10M] [--suite-rows 1M] [--repeats 3]
                                           [--out results.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from distillery.filters.registry import Verifiers
from distillery.filters.verification import select_pending
from distillery.generators.sampling import plan, select_prompts
from distillery.warehouse.compact import compact
from distillery.warehouse.ids import id_sql
from distillery.warehouse.records import ModelRecord
from distillery.warehouse.store import Warehouse

_spec = importlib.util.spec_from_file_location(
    "warehouse_bench", Path(__file__).with_name("warehouse.py")
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["warehouse_bench"] = bench
_spec.loader.exec_module(bench)

K, PARAMS, SUITE, QUERY = bench.K, bench.PARAMS, bench.SUITE, bench.QUERY
RUN_ROWS = bench.RUN_ROWS
STATES = ("files", "rollup", "rollup+delta")


def model_id(round_: int) -> str:
    return f"mdl-round-{round_:03d}"


def models(rounds: int) -> list[ModelRecord]:
    def one(r: int) -> ModelRecord:
        return ModelRecord(
            model_id(r), f"round-{r}", "bench", "alias", None, None, None, True, False,
            "run-models", bench.BASE_TIME,
        )  # fmt: skip

    return [one(r) for r in range(rounds)]


def suite_table(data: Any, prompts: int) -> pa.Table:
    """Per prompt of the suite: its id, pass rate, verifier kind and version, fail reason."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("pos", "prompt_id", "rate", "kind", "version", "reason")
    }
    for i in range(prompts):
        t = data.template(i)
        rate, reason, _ = bench.FAMILY[t.family]
        for k, v in zip(rows, (i, data.prompt_id(i), rate, t.kind, t.version, reason), strict=True):
            rows[k].append(v)
    return pa.table(rows)


def write_round(con: duckdb.DuckDBPyConnection, wh: Warehouse, r: int, suite: pa.Table) -> None:
    """Round r: the model's 16 draws of every prompt but the last, and their verdicts."""
    mid = model_id(r)
    head, tail = PARAMS.id_text("PROMPT", mid)
    before, after = head.split('"PROMPT"')
    # The id text of `SamplingParams.id_text`, with each prompt's JSON-quoted id in place.
    text_expr = f"'{before}' || to_json(s.prompt_id)::VARCHAR || '{after}'"
    con.register("suite", suite)
    base = bench.BASE_TIME + timedelta(days=2 * r)
    draws = con.sql(
        f"""
        WITH d AS (
            SELECT s.*, i.idx, s.pos * {K} + i.idx AS row_no,
                   {id_sql("smp", f"{text_expr} || i.idx::VARCHAR || '{tail}'")} AS sample_id
            FROM suite s, range({K}) i(idx) WHERE s.pos < (SELECT max(pos) FROM suite)
        )
        SELECT sample_id, prompt_id, '{mid}' AS model_id,
               'run-r{r:03d}-' || (row_no // {RUN_ROWS})::VARCHAR AS run_id,
               'transformers' AS backend, idx, {PARAMS.seed} AS seed,
               {PARAMS.temperature} AS temperature, {PARAMS.top_p} AS top_p,
               {PARAMS.max_new_tokens} AS max_new_tokens,
               repeat('lorem ipsum ', (1 + hash(sample_id) % 40)::BIGINT) AS text,
               40 AS prompt_tokens, 8 AS completion_tokens, 'stop' AS finish_reason,
               0.01 AS latency_s, 'sample' AS procedure, NULL::VARCHAR AS context_id,
               TIMESTAMPTZ '{base.isoformat()}' + to_microseconds(row_no) AS created_at,
               kind, version, reason,
               (hash(sample_id || 'v') % 1000) < rate * 1000 AS passed
        FROM d
        """
    ).to_arrow_table()
    verdict_cols = ("sample_id", "kind", "version", "passed", "reason", "run_id", "created_at")
    verdicts = draws.select(list(verdict_cols)).rename_columns(
        ["sample_id", "verifier", "verifier_version", "passed", "reason", "run_id", "created_at"]
    )
    n = verdicts.num_rows
    verdicts = (
        verdicts.append_column("score", pa.array([None] * n, pa.float64()))
        .append_column("detail", pa.array([""] * n))
        .append_column("seconds", pa.array([0.001] * n))
    )
    verdicts = verdicts.set_column(
        verdicts.schema.get_field_index("created_at"),
        "created_at",
        pc.add(verdicts["created_at"], pa.scalar(timedelta(days=1))),
    )
    samples = draws.drop_columns(["kind", "version", "reason", "passed"])
    wh.write_table("samples", samples)
    wh.write_table("verdicts", verdicts)


def new_draws(con: duckdb.DuckDBPyConnection, wh: Warehouse, r: int, suite: pa.Table) -> None:
    """The newest model's 16 draws of the new prompt (the suite's last), no verdict yet."""
    last = suite.slice(suite.num_rows - 1)
    mid = model_id(r)
    head, tail = PARAMS.id_text(last["prompt_id"][0].as_py(), mid)
    con.register("new_prompt", last)
    rows = con.sql(
        f"""
        SELECT {id_sql("smp", f"'{head}' || i.idx::VARCHAR || '{tail}'")} AS sample_id,
               prompt_id, '{mid}' AS model_id, 'run-new' AS run_id, 'transformers' AS backend,
               i.idx AS idx, {PARAMS.seed} AS seed, {PARAMS.temperature} AS temperature,
               {PARAMS.top_p} AS top_p, {PARAMS.max_new_tokens} AS max_new_tokens,
               'a new draw' AS text, 40 AS prompt_tokens, 8 AS completion_tokens,
               'stop' AS finish_reason, 0.01 AS latency_s, 'sample' AS procedure,
               NULL::VARCHAR AS context_id, now()::TIMESTAMPTZ AS created_at,
               kind, version
        FROM new_prompt, range({K}) i(idx)
        """
    ).to_arrow_table()
    wh.write_table("samples", rows.drop_columns(["kind", "version"]))
    con.register("new_rows", rows)


def new_verdicts(con: duckdb.DuckDBPyConnection, wh: Warehouse) -> None:
    rows = con.sql(
        "SELECT sample_id, kind AS verifier, version AS verifier_version, "
        "idx % 3 = 0 AS passed, NULL::DOUBLE AS score, 'ok' AS reason, '' AS detail, "
        "0.001 AS seconds, 'run-new-verify' AS run_id, now()::TIMESTAMPTZ AS created_at "
        "FROM new_rows"
    ).to_arrow_table()
    wh.write_table("verdicts", rows)


def measure(root: Path, rounds: int, suite_prompts: int, repeats: int, log: Callable) -> dict:
    newest = model_id(rounds - 1)
    asked_rows = (suite_prompts - 1) * K  # what the newest model has drawn already

    def resume() -> dict[str, float]:
        return resume_count(root, newest, asked_rows, K)

    def check() -> None:
        want = sorted(bench.floor(root))
        got = sorted(Warehouse.open_existing(root).query(QUERY))
        for a, b in zip(want, got, strict=True):
            assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-9, (want, got)

    variants = {
        "pass@k": lambda: query(root),
        "sql": lambda: sql(root),
        "floor": lambda: {"total_s": bench.timed(lambda: bench.floor(root))[0]},
    }
    out: dict[str, Any] = {}
    check()
    out["files"] = bench.summarise(
        bench.rotate(
            {**variants, "resume": resume, "verify": lambda: pending_count(root, 0)}, repeats
        )
    )
    log(f"  files: {brief(out['files'])}")
    t, report = bench.timed(lambda: compact(root))
    out["compact"] = {
        "s": t,
        "files_before": report.files_before,
        "files_after": report.files_after,
    }
    log(f"  compact (and roll-up): {t:.1f}s")
    check()
    out["rollup"] = bench.summarise(
        bench.rotate(
            {**variants, "resume": resume, "verify": lambda: pending_count(root, 0)}, repeats
        )
    )
    log(f"  rollup: {brief(out['rollup'])}")
    return out


def brief(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v['total_s']:.3f}s" for k, v in figures.items())


def point(
    n: int, suite_rows: int, data: Any, work: Path, repeats: int, log: Callable, keep: bool
) -> dict:
    rounds = n // suite_rows
    suite_prompts = suite_rows // K + 1
    root = work / f"wh-{n}"
    started = time.perf_counter()
    try:
        wh = Warehouse.open(root)
        wh.write([*data.prompts(suite_prompts), *models(rounds)])
        suite = suite_table(data, suite_prompts)
        with duckdb.connect() as con:
            for r in range(rounds):
                write_round(con, wh, r, suite)
                log(f"  round {r + 1}/{rounds} written")
            out = measure(root, rounds, suite_prompts, repeats, log)
            # The delta: the newest model's draws of the new prompt, then their verdicts.
            new_draws(con, wh, rounds - 1, suite)
            fig = bench.rotate({"verify": lambda: pending_count(root, K)}, repeats)
            new_verdicts(con, wh)
            want = sorted(bench.floor(root))
            got = sorted(Warehouse.open_existing(root).query(QUERY))
            assert [a[0] for a in want] == [b[0] for b in got]
            fig |= bench.rotate({"pass@k": lambda: query(root), "sql": lambda: sql(root)}, repeats)
            out["rollup+delta"] = bench.summarise(fig)
            log(f"  rollup+delta: {brief(out['rollup+delta'])}")
        out["rounds"], out["suite_prompts"] = rounds, suite_prompts
        out["disk_bytes"] = sum(f.stat().st_size for f in root.rglob("*.parquet"))
        return out
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        log(f"  point wall {time.perf_counter() - started:.0f}s")


def resume_count(root: Path, model: str, already: int, missing: int) -> dict[str, float]:
    """Resume planning as `distillery sample` does it for `model` over the whole suite."""
    wh = Warehouse.open(root)
    t, (requests, got) = bench.timed(
        lambda: plan(wh, select_prompts(wh, SUITE, None), model, PARAMS)
    )
    assert got == already and sum(len(q.indices) for q in requests) == missing, got
    return {"total_s": t}


def alternating(roots: dict[str, tuple[Path, int, int]], repeats: int) -> dict[str, Any]:
    """Every point's final state (roll-up plus the delta), each measure taken on the points
    one after another, `repeats` times with the order rotated: drift on a shared host
    hits every point alike, so their ratios hold where separate runs' would not."""
    variants: dict[str, Callable[[], dict[str, float]]] = {}
    for measure_name in ("pass@k", "sql", "verify", "resume"):
        for name, (root, rounds, prompts) in roots.items():
            key = f"{name} {measure_name}"
            if measure_name == "pass@k":
                variants[key] = lambda root=root: query(root)
            elif measure_name == "sql":
                variants[key] = lambda root=root: sql(root)
            elif measure_name == "verify":
                variants[key] = lambda root=root: pending_count(root, 0)
            else:  # the newest model has drawn the new prompt too: nothing missing
                variants[key] = lambda root=root, rounds=rounds, prompts=prompts: resume_count(
                    root, model_id(rounds - 1), prompts * K, 0
                )
    return bench.summarise(bench.rotate(variants, repeats))


def query(root: Path) -> dict[str, float]:
    return {"total_s": bench.timed(lambda: Warehouse.open_existing(root).query(QUERY))[0]}


def sql(root: Path) -> dict[str, float]:
    return {"total_s": bench.cli(root, QUERY)}


def pending_count(root: Path, expect: int) -> dict[str, float]:
    wh = Warehouse.open_existing(root)
    verifiers = Verifiers()
    try:
        t, (rows, _) = bench.timed(lambda: select_pending(wh, None, None, None, verifiers))
    finally:
        verifiers.close()
    assert len(rows) == expect, len(rows)
    return {"total_s": t}


def table(points: dict[str, dict]) -> Table:
    t = Table(
        *("rows (rounds)", "state", "pass@k s", "distillery sql s", "resume plan s"),
        *("verify plan s", "floor s"),
        title="history series: fresh handles, medians",
    )
    for name, f in points.items():
        for state in STATES:
            s = f[state]

            def g(k: str, s: dict = s) -> str:
                return f"{s[k]['total_s']:.3f}" if k in s else "-"

            t.add_row(f"{name} ({f['rounds']})", state, g("pass@k"), g("sql"), g("resume"),
                      g("verify"), g("floor"))  # fmt: skip
    return t


def ratios(figures: dict[str, Any], names: list[str]) -> Table:
    t = Table(
        "measure", *(f"{n} s" for n in names), f"{names[-1]} / {names[0]}",
        title="alternating: roll-up plus delta, fresh handles, medians",
    )  # fmt: skip
    for measure_name in ("pass@k", "sql", "verify", "resume"):
        values = [figures[f"{n} {measure_name}"]["total_s"] for n in names]
        t.add_row(measure_name, *(f"{v:.3f}" for v in values), f"{values[-1] / values[0]:.2f}x")
    return t


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1M,10M")
    p.add_argument("--suite-rows", default="1M")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the warehouses in this folder and leave them there (for profiling)",
    )
    p.add_argument(
        "--alternate",
        action="store_true",
        help="then measure every point's final state again, the points in turn (ratios)",
    )
    args = p.parse_args(argv)
    console = Console(width=160)
    started = time.perf_counter()

    def log(msg: str) -> None:
        console.print(f"[{time.perf_counter() - started:7.1f}s] {msg}", highlight=False)

    suite_rows = bench.parse_count(args.suite_rows)
    sizes = [bench.parse_count(x) for x in args.sizes.split(",") if x.strip()]
    if suite_rows % K or any(n % suite_rows for n in sizes):
        raise SystemExit("each size must be a whole number of suites of 16 draws per prompt")
    data = bench.Data()
    data.check_ids()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="distillery-whhist-", dir="/tmp"))
    payload: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "code": bench.code_version(),
        "points": {},
    }
    try:
        for n in sizes:
            log(f"[bold]{bench.label(n)} rows[/]")
            payload["points"][bench.label(n)] = point(
                n, suite_rows, data, work, args.repeats, log,
                keep=args.alternate or args.keep is not None,
            )  # fmt: skip
            if args.out:
                args.out.write_text(json.dumps(payload, indent=2) + "\n")
        if args.alternate:
            log("[bold]alternating[/]: each measure on every point in turn")
            roots = {
                bench.label(n): (work / f"wh-{n}", n // suite_rows, suite_rows // K + 1)
                for n in sizes
            }
            payload["alternating"] = alternating(roots, args.repeats)
            if args.out:
                args.out.write_text(json.dumps(payload, indent=2) + "\n")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    console.print(table(payload["points"]))
    if "alternating" in payload:
        console.print(ratios(payload["alternating"], [bench.label(n) for n in sizes]))
    console.print(f"wall {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
