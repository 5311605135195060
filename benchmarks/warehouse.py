"""The warehouse at growing size: ingest, resume and verify planning, pass@k through SQL.

A baseline for the warehouse work of issue 15 (pushed-down anti-joins, compaction, faster
ingest). Each point is a fresh warehouse under a temporary directory in /tmp (deleted
after), holding N sample rows, each with one verdict, over N/16 prompts of 5 families
(templates from the seeds suite, each prompt made unique), 16 draws per prompt, plus one
more prompt with no sample yet. Two series:

- sizes (`--sizes`, default 10k,100k,1M; 10M optional): `--rows-per-file` rows per file
  (default 10,000: 1, 10, 100 files per table);
- file counts (`--files`, default 100,1000,10000) at `--files-rows` rows (default 1M):
  the rows written in F batches, F files per table.

At each point, in this order:

1. ingest: the rows written batch by batch through `Warehouse.write(records)` (records
   built beforehand, untimed) against `pyarrow.parquet.write_table` of the same Arrow
   tables with zstd, alternating which goes first; also the writer's record-to-Arrow
   conversion alone (`writer_parquet.to_arrow`), the part of its time raw pyarrow skips;
2. resume planning, as `distillery sample --suite bench --n 16` before it samples:
   `select_prompts` + `generators.sampling.plan`, which finds the new prompt's 16 draws;
3. then the 16 draws are written (no verdict), and verify planning, as `distillery verify`
   does it: `filters.verification.select_pending`, which finds those 16;
4. `SELECT family, avg(pass_at_k(n, c, 1)) FROM prompt_outcomes GROUP BY 1` via
   `Warehouse.query`;
5. the same through `distillery sql --warehouse DIR "<query>"` as a subprocess (wall time;
   and `SELECT 1` the same way: the CLI's fixed cost);
6. the same per-family pass@k with DuckDB reading the files directly (`read_parquet(glob)`,
   no dedup, no views): the floor.

2-4 are timed with a fresh handle (what each CLI command pays: `Warehouse.open` or
`open_existing`, the in-memory database and its views built on the first query) and with a
warm one (one handle, its DuckDB connection kept, as a flow's tasks share it); 2-6 rotate
their variants within each repeat, and medians of `--repeats` are reported. The OS page
cache is warm for all of them (the files were just written). `--profile` adds, at the
last point of each series, cProfile of the fresh resume and verify planning and DuckDB's
own profile (binding, total and CPU time, the slowest operators) of the pass@k query and
of the floor, in a text file beside `--out`.

    python benchmarks/warehouse.py [--quick] [--sizes 10k,100k,1M] [--files 100,1000,10000]
                                   [--repeats 3] [--profile] [--out results.json]

`--quick`: sizes 10k,100k; files 100,1000 at 100k rows; 3 repeats (a couple of minutes).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from distillery.filters.registry import Verifiers
from distillery.filters.verification import select_pending
from distillery.generators.base import SamplingParams
from distillery.generators.sampling import plan, select_prompts
from distillery.tasks.suite_seeds import SeedsSuite
from distillery.warehouse import writer_parquet
from distillery.warehouse.compact import compact
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.passk import PASS_AT_K_MACRO
from distillery.warehouse.records import ModelRecord, PromptRecord, SampleRecord, VerdictRecord
from distillery.warehouse.store import Warehouse
from distillery.warehouse.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("distillery")
SUITE = "bench"
MODEL_ID = "mdl-bench"
K = 16  # draws per prompt
PARAMS = SamplingParams(n=K, temperature=0.8, top_p=0.95, max_new_tokens=128, seed=0)
RUN_ROWS = 100_000  # one sample run (and one verify run) per this many rows
QUERY = "SELECT family, avg(pass_at_k(n, c, 1)) AS pass_at_1 FROM prompt_outcomes GROUP BY 1"
FLOOR = """
SELECT family, avg(pass_at_k(n, c, 1)) AS pass_at_1 FROM (
  SELECT s.model_id, s.prompt_id, p.suite, p.family, p.split,
         s.temperature, s.top_p, s.max_new_tokens, count(*) AS n, sum(v.passed::INT) AS c
  FROM read_parquet('{root}/tables/samples/*/*.parquet') s
  JOIN read_parquet('{root}/tables/prompts/*/*.parquet') p USING (prompt_id)
  JOIN read_parquet('{root}/tables/verdicts/*/*.parquet') v USING (sample_id)
  WHERE coalesce(s.procedure, 'sample') = 'sample'
  GROUP BY ALL
) GROUP BY 1
"""
_VOCABULARY = (
    "the of and to in is that for it as with was on be by this are from at or an which one "
    "all were we there their when more can has been if will would what so about out up into "
    "than them some could other then these two may only time new first any like over such "
    "def return value result list int str none true false answer json city country date "
    "number total sum because therefore hence each step mayor project budget opened hall"
)
WORDS = _VOCABULARY.split()
# Pass rate per family and the reason a failing verdict gives, roughly as seen in practice.
FAMILY = {
    "code": (0.15, "runtime_error", 60),
    "date": (0.05, "wrong_answer", 2),
    "json": (0.2, "schema_mismatch", 12),
    "number": (0.1, "wrong_answer", 3),
    "summary": (0.4, "style_violation", 45),
}
FAMILIES = tuple(sorted(FAMILY))
BASE_TIME = datetime(2026, 12, 1, tzinfo=UTC)


def parse_count(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Template:
    family: str
    chat: list[dict[str, str]]
    verifier: str  # canonical JSON
    spec: dict[str, Any]
    kind: str
    version: str
    reference: str


class Data:
    """Deterministic rows: prompt i is family FAMILIES[i % 5] (a seeds prompt made unique);
    prompt i's draws are sample rows 16 i .. 16 i + 15, each with one verdict."""

    def __init__(self) -> None:
        by_family: dict[str, list[Template]] = {f: [] for f in FAMILIES}
        for p in SeedsSuite().prompts():
            spec = json.loads(p.verifier)
            by_family[p.family].append(
                Template(
                    p.family,
                    p.chat,
                    p.verifier,
                    spec,
                    spec["kind"],
                    Verifiers.version(spec),
                    p.reference or "",
                )
            )
        self.templates = by_family
        self._ids: list[str] = []
        self._prefix: list[str] = []
        ident = PARAMS.identity()
        self._ident = ident
        # The sample id's hash input without its index: `content_id("smp", ...)` spelled out
        # so 1M ids take ~1 s instead of ~10 s (checked against `sample_id` below).
        self._head = canonical_json([MODEL_ID, ident, PARAMS.seed])[1:-1]

    def template(self, i: int) -> Template:
        ts = self.templates[FAMILIES[i % len(FAMILIES)]]
        return ts[(i // len(FAMILIES)) % len(ts)]

    def _chat(self, i: int) -> list[dict[str, str]]:
        t = self.template(i)
        last = t.chat[-1]
        return [*t.chat[:-1], {"role": last["role"], "content": f"{last['content']} (#{i})"}]

    def prompt_id(self, i: int) -> str:
        while len(self._ids) <= i:
            j = len(self._ids)
            pid = content_id("prm", SUITE, self._chat(j), self.template(j).spec)
            self._ids.append(pid)
            self._prefix.append(f"[{json.dumps(pid)},{self._head},")
        return self._ids[i]

    def sample_id(self, i: int, idx: int) -> str:
        self.prompt_id(i)
        text = f"{self._prefix[i]}{idx}]"
        return "smp-" + hashlib.sha256(text.encode()).hexdigest()[:24]

    def prompts(self, count: int) -> list[PromptRecord]:
        out = []
        for i in range(count):
            t = self.template(i)
            out.append(
                PromptRecord(
                    prompt_id=self.prompt_id(i),
                    suite=SUITE,
                    family=t.family,
                    split="test" if i % 3 == 0 else "train",
                    messages=canonical_json(self._chat(i)),
                    verifier=t.verifier,
                    reference=t.reference or None,
                    run_id="run-prompts",
                    created_at=BASE_TIME,
                )
            )
        return out

    def samples(
        self, first: int, rows: int, run_id: str | None = None, verdicts: bool = True
    ) -> tuple[list[SampleRecord], list[VerdictRecord]]:
        """Sample rows [first, first + rows) (16 per prompt) and their verdicts."""
        rng = random.Random(first)
        samples, out_verdicts = [], []
        for r in range(first, first + rows):
            i, idx = divmod(r, K)
            t = self.template(i)
            rate, fail_reason, words = FAMILY[t.family]
            n_words = rng.randint(1, 2 * words)
            text = " ".join(rng.choices(WORDS, k=n_words))
            if idx % 4 == 0 and t.reference:
                text = t.reference
            sid = self.sample_id(i, idx)
            tokens = max(1, len(text) // 4)
            run = run_id or f"run-smp{r // RUN_ROWS:05d}"
            at = BASE_TIME + timedelta(microseconds=r)
            samples.append(
                SampleRecord(
                    sample_id=sid,
                    prompt_id=self.prompt_id(i),
                    model_id=MODEL_ID,
                    run_id=run,
                    backend="transformers",
                    idx=idx,
                    seed=PARAMS.seed,
                    temperature=PARAMS.temperature,
                    top_p=PARAMS.top_p,
                    max_new_tokens=PARAMS.max_new_tokens,
                    text=text,
                    prompt_tokens=40 + i % 50,
                    completion_tokens=tokens,
                    finish_reason="stop" if tokens < PARAMS.max_new_tokens else "length",
                    latency_s=tokens * 0.004,
                    created_at=at,
                )
            )
            if verdicts:
                passed = rng.random() < rate
                out_verdicts.append(
                    VerdictRecord(
                        sample_id=sid,
                        verifier=t.kind,
                        verifier_version=t.version,
                        passed=passed,
                        score=1.0 if passed else 0.0,
                        reason="ok" if passed else fail_reason,
                        detail="" if passed else f"{fail_reason}: expected something else",
                        seconds=rng.random() * 0.01,
                        run_id=f"run-ver{r // RUN_ROWS:05d}",
                        created_at=at + timedelta(days=1),
                    )
                )
        return samples, out_verdicts

    def check_ids(self) -> None:
        for i, idx in ((0, 0), (7, 15), (123, 3)):
            assert self.sample_id(i, idx) == PARAMS.sample_id(self.prompt_id(i), MODEL_ID, idx)


# ---------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


@dataclass
class Point:
    series: str  # "size" | "files"
    rows: int
    files: int  # files per table (samples, verdicts)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{label(self.rows)} rows / {self.files} files"


def ingest(
    root: Path, data: Data, rows: int, files: int, scratch: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Write `rows` sample rows and their verdicts in `files` batches: the writer against
    raw `write_table` (zstd) of the same Arrow tables, alternating which goes first."""
    wh = Warehouse.open(root)
    prompts = rows // K + 1  # the last one has no draw yet (resume planning finds it)
    setup_s, _ = timed(lambda: wh.write([*data.prompts(prompts), model_record()]))
    per = rows // files
    writer_s = raw_s = convert_s = gen_s = 0.0
    ratios = []
    scratch.mkdir(parents=True, exist_ok=True)
    report_every = max(1, files // 10)
    arrow_samples: list[pa.Table] = []
    for b in range(files):
        first = b * per
        count = per if b < files - 1 else rows - first
        g, (samples, verdicts) = timed(lambda first=first, count=count: data.samples(first, count))
        gen_s += g
        c, tables = timed(
            lambda s=samples, v=verdicts: (
                writer_parquet.to_arrow(TABLES["samples"], s),
                writer_parquet.to_arrow(TABLES["verdicts"], v),
            )
        )
        convert_s += c
        arrow_samples.append(tables[0])

        def through_writer(s: list = samples, v: list = verdicts) -> None:
            wh.write(s)
            wh.write(v)

        paths = [scratch / f"{uuid.uuid4().hex}.parquet" for _ in tables]

        def raw(tables: tuple = tables, paths: list = paths) -> None:
            for t, p in zip(tables, paths, strict=True):
                pq.write_table(t, p, compression="zstd")

        order = (through_writer, raw) if b % 2 == 0 else (raw, through_writer)
        took = {fn.__name__: timed(fn)[0] for fn in order}
        writer_s += took["through_writer"]
        raw_s += took["raw"]
        ratios.append(took["through_writer"] / took["raw"])
        for p in paths:
            p.unlink()
        if (b + 1) % report_every == 0:
            log(f"    ingest {b + 1}/{files} batches, writer {writer_s:.1f}s raw {raw_s:.1f}s")
    disk = sum(f.stat().st_size for f in (root / "tables").glob("*/*/*.parquet"))
    columns = pa.concat_tables(arrow_samples)
    one_call = ingest_columns(columns, scratch, log)
    # As one import writes them: every row in one run, so one file (the writer keeps a
    # file per run; the rows above span runs of RUN_ROWS rows).
    one_run = columns.set_column(
        columns.schema.get_field_index("run_id"),
        "run_id",
        pa.repeat(pa.scalar("run-import"), columns.num_rows),
    )
    one_call_one_run = ingest_columns(one_run, scratch, log)
    return {
        "columns_one_call": one_call,
        "columns_one_call_one_run": one_call_one_run,
        "rows": rows,
        "files_per_table": files,
        "prompts": prompts,
        "writer_s": writer_s,
        "raw_write_table_s": raw_s,
        "ratio": writer_s / raw_s,
        "median_batch_ratio": statistics.median(ratios),
        "to_arrow_s": convert_s,
        "writer_rows_per_s": 2 * rows / writer_s,
        "generate_records_s": gen_s,
        "prompts_setup_s": setup_s,
        "disk_bytes": disk,
    }


def ingest_columns(
    samples: pa.Table, scratch: Path, log: Callable[[str], None], repeats: int = 3
) -> dict[str, Any]:
    """All the sample rows in one call, as Arrow columns: `Warehouse.write_table` (schema
    check and cast, a temporary file, fsync, rename) against `pyarrow.parquet.write_table`
    of the same table with zstd, alternating which goes first."""
    out: dict[str, list[float]] = {"write_table_s": [], "raw_write_table_s": []}
    for r in range(repeats):
        target = scratch / f"wh-{uuid.uuid4().hex}"
        raw_path = scratch / f"{uuid.uuid4().hex}.parquet"

        def ours(target: Path = target) -> None:
            writer_parquet.write_table(target, "samples", samples)

        def theirs(raw_path: Path = raw_path) -> None:
            pq.write_table(samples, raw_path, compression="zstd")

        for name, fn in (
            [("write_table_s", ours), ("raw_write_table_s", theirs)]
            if r % 2 == 0
            else [("raw_write_table_s", theirs), ("write_table_s", ours)]
        ):
            out[name].append(timed(fn)[0])
        shutil.rmtree(target, ignore_errors=True)
        raw_path.unlink(missing_ok=True)
    ours_s, theirs_s = (
        statistics.median(out["write_table_s"]),
        statistics.median(out["raw_write_table_s"]),
    )
    log(
        f"  ingest of {samples.num_rows:,} rows (runs: {len(samples['run_id'].unique())}) "
        f"as columns in one call: write_table "
        f"{ours_s:.2f}s, raw {theirs_s:.2f}s, ratio {ours_s / theirs_s:.2f}"
    )
    return {
        "rows": samples.num_rows,
        "write_table_s": ours_s,
        "raw_write_table_s": theirs_s,
        "ratio": ours_s / theirs_s,
        "runs": out,
    }


def model_record() -> ModelRecord:
    return ModelRecord(
        model_id=MODEL_ID,
        name="bench-model",
        source="bench",
        source_kind="alias",
        path=None,
        parent_id=None,
        job_id=None,
        trained=True,
        promoted=False,
        run_id="run-prompts",
        created_at=BASE_TIME,
    )


def connect_s(wh: Warehouse) -> float:
    """Build a fresh handle's in-memory database and views (what its first query pays)."""

    def connect() -> None:
        wh.connect().close()

    return timed(connect)[0]


def run_plan(wh: Warehouse, rows: int, missing: int = K) -> dict[str, float]:
    t_sel, prompts = timed(lambda: select_prompts(wh, SUITE, None))
    t_plan, (requests, already) = timed(lambda: plan(wh, prompts, MODEL_ID, PARAMS))
    got = sum(len(r.indices) for r in requests)
    assert already == rows and got == missing, (already, requests)
    return {"select_prompts_s": t_sel, "plan_s": t_plan, "total_s": t_sel + t_plan}


def run_pending(wh: Warehouse, rows: int) -> dict[str, float]:
    verifiers = Verifiers()
    try:
        t, (pending, already) = timed(lambda: select_pending(wh, None, None, None, verifiers))
    finally:
        verifiers.close()
    assert len(pending) == K and already == rows, (len(pending), already)
    return {"total_s": t}


def cli(root: Path, sql: str) -> float:
    cmd = [str(CLI), "sql", "--warehouse", str(root), "--format", "csv", sql]
    env = {k: v for k, v in os.environ.items() if k != "DISTILLERY_WAREHOUSE"}
    t, proc = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env=env))
    if proc.returncode != 0:
        raise RuntimeError(f"distillery sql failed: {proc.stderr[-2000:]}")
    return t


def floor(root: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute(PASS_AT_K_MACRO)
        return con.execute(FLOOR.format(root=root)).fetchall()
    finally:
        con.close()


def rotate(variants: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[Any]]:
    """Each variant once per repeat, the starting one rotating, so drift hits all alike."""
    names = list(variants)
    out: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            out[n].append(variants[n]())
    return out


def med(values: list[Any], key: str | None = None) -> float:
    return statistics.median(v[key] if key else v for v in values)


def measure(
    point: Point,
    data: Data,
    work: Path,
    repeats: int,
    profile: Path | None,
    log: Callable[[str], None],
    compacting: bool = False,
) -> None:
    root = work / f"wh-{point.series}-{point.rows}-{point.files}"
    started = time.perf_counter()
    try:
        log(f"[bold]{point.series}: {point.name}[/]")
        f = point.figures
        f["ingest"] = ingest(root, data, point.rows, point.files, work / "raw", log)
        log(
            f"  ingest: writer {f['ingest']['writer_s']:.2f}s, write_table "
            f"{f['ingest']['raw_write_table_s']:.2f}s, ratio {f['ingest']['ratio']:.2f}"
        )

        def plan_fresh() -> dict[str, float]:
            # As `distillery sample` does: open the warehouse, then select and plan on it.
            t_open, wh = timed(lambda: Warehouse.open(root))
            t_db = connect_s(wh)
            r = run_plan(wh, point.rows)
            return {**r, "open_s": t_open, "db_s": t_db, "total_s": r["total_s"] + t_open + t_db}

        warm = Warehouse.open(root)
        connect_s(warm)  # builds the warm handle's database, once
        runs = rotate({"fresh": plan_fresh, "warm": lambda: run_plan(warm, point.rows)}, repeats)
        f["plan"] = summarise(runs)
        log(
            f"  plan: fresh {f['plan']['fresh']['total_s']:.3f}s, "
            f"warm {f['plan']['warm']['total_s']:.3f}s"
        )
        if profile is not None:
            profile_call(
                profile,
                f"{point.name}: Warehouse.open + select_prompts + plan (fresh)",
                lambda: run_plan(Warehouse.open(root), point.rows),
            )

        # `sample` draws the new prompt's 16 samples: written, not yet verified.
        new, _ = data.samples(point.rows, K, run_id="run-new", verdicts=False)
        warm.write(new)

        def pending_fresh() -> dict[str, float]:
            t_open, wh = timed(lambda: Warehouse.open_existing(root))
            t_db = connect_s(wh)
            r = run_pending(wh, point.rows)
            return {"open_s": t_open, "db_s": t_db, "total_s": r["total_s"] + t_open + t_db}

        def sql_fresh() -> dict[str, float]:
            t_open, wh = timed(lambda: Warehouse.open_existing(root))
            t_db = connect_s(wh)
            t = timed(lambda: wh.query(QUERY))[0]
            return {"open_s": t_open, "db_s": t_db, "query_s": t, "total_s": t_open + t_db + t}

        runs = rotate(
            {"fresh": pending_fresh, "warm": lambda: run_pending(warm, point.rows)}, repeats
        )
        f["verify_plan"] = summarise(runs)
        log(
            f"  verify planning: fresh {f['verify_plan']['fresh']['total_s']:.3f}s, "
            f"warm {f['verify_plan']['warm']['total_s']:.3f}s"
        )
        if profile is not None:
            profile_call(
                profile,
                f"{point.name}: select_pending (fresh handle)",
                lambda: run_pending(Warehouse.open_existing(root), point.rows),
            )

        expect = sorted(warm.query(QUERY))
        got = sorted(floor(root))
        assert [r[0] for r in expect] == list(FAMILIES), expect
        for a, b in zip(expect, got, strict=True):
            assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-9, (expect, got)
        f["pass_at_1"] = {fam: v for fam, v in expect}
        runs = rotate(
            {
                "sql_fresh": sql_fresh,
                "sql_warm": lambda: {"total_s": timed(lambda: warm.query(QUERY))[0]},
                "cli": lambda: {"total_s": cli(root, QUERY)},
                "cli_select_1": lambda: {"total_s": cli(root, "SELECT 1")},
                "floor": lambda: {"total_s": timed(lambda: floor(root))[0]},
            },
            repeats,
        )
        f["query"] = q = summarise(runs)
        log(
            "  pass@k: "
            + ", ".join(f"{k} {v['total_s']:.3f}s" for k, v in q.items())
            + f"; fresh / floor {q['sql_fresh']['total_s'] / q['floor']['total_s']:.1f}x"
        )
        if profile is not None:
            explain(profile, f"{point.name}: {QUERY}", warm, QUERY)
            explain(profile, f"{point.name}: floor", None, FLOOR.format(root=root))
        if compacting:
            t, report = timed(lambda: compact(root))
            f["compact"] = {
                "s": t,
                "files_before": report.files_before,
                "files_after": report.files_after,
            }
            log(
                f"  compact: {f['compact']['files_before']} -> {f['compact']['files_after']} "
                f"files in {t:.1f}s"
            )
            after = sorted(Warehouse.open_existing(root).query(QUERY))
            for x, y in zip(expect, after, strict=True):  # sums in another order: ~1e-15
                assert x[0] == y[0] and abs(x[1] - y[1]) < 1e-9, (expect, after)
            runs = rotate(
                {
                    "sql_fresh": sql_fresh,
                    "cli": lambda: {"total_s": cli(root, QUERY)},
                    "plan_fresh": lambda: {
                        "total_s": run_plan(Warehouse.open(root), point.rows + K, 0)["total_s"]
                    },
                    "pending_fresh": pending_fresh,
                    "floor": lambda: {"total_s": timed(lambda: floor(root))[0]},
                },
                repeats,
            )
            f["after_compact"] = a = summarise(runs)
            log(
                "  after compaction: " + ", ".join(f"{k} {v['total_s']:.3f}s" for k, v in a.items())
            )
            # Then a verify run stores the new draws' verdicts: rows the roll-up the
            # compaction wrote does not cover (its delta), which the views correct it by.
            _, new_verdicts = data.samples(point.rows, K, run_id="run-new")
            warm.write(new_verdicts)
            expect = sorted(floor(root))  # no copies in these files: the floor is exact
            after = sorted(Warehouse.open_existing(root).query(QUERY))
            for x, y in zip(expect, after, strict=True):
                assert x[0] == y[0] and abs(x[1] - y[1]) < 1e-9, (expect, after)
            runs = rotate(
                {
                    "sql_fresh": sql_fresh,
                    "cli": lambda: {"total_s": cli(root, QUERY)},
                    "floor": lambda: {"total_s": timed(lambda: floor(root))[0]},
                },
                repeats,
            )
            f["after_compact_delta"] = d = summarise(runs)
            log(
                "  after compaction + 16 verdicts: "
                + ", ".join(f"{k} {v['total_s']:.3f}s" for k, v in d.items())
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        point.figures["point_wall_s"] = time.perf_counter() - started


def summarise(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant, values in runs.items():
        out[variant] = {k: med(values, k) for k in values[0]}
        out[variant]["runs_s"] = [v["total_s"] for v in values]
    return out


def profile_call(path: Path, title: str, fn: Callable[[], Any]) -> None:
    prof = cProfile.Profile()
    prof.runcall(fn)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"\n===== cProfile: {title}\n{buf.getvalue()}")


def explain(path: Path, title: str, wh: Warehouse | None, sql: str) -> None:
    """DuckDB's own profile of one run of `sql`: binding, total and CPU time, and the
    operators that took longest (CPU seconds summed over threads)."""
    con = wh.connect() if wh is not None else duckdb.connect()
    out = path.with_suffix(f".{uuid.uuid4().hex[:8]}.json")
    try:
        if wh is None:
            con.execute(PASS_AT_K_MACRO)
        con.execute("SET enable_profiling = 'json'")
        con.execute(f"SET profiling_output = '{out}'")
        con.execute(sql).fetchall()
        con.execute("PRAGMA disable_profiling")
        prof = json.loads(out.read_text(encoding="utf-8"))
    finally:
        con.close()
        out.unlink(missing_ok=True)
    ops: list[tuple[float, str, int, str]] = []

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info") or {}
        what = {k: info[k] for k in ("Function", "Conditions", "Total Files Read") if k in info}
        ops.append((node["timing"], node["name"], node["intermediate_rows"], json.dumps(what)))
        for child in node.get("children", []):
            walk(child)

    for node in prof["operator"]:
        walk(node)
    q = prof["query"]
    lines = [
        f"total {q['total_time']:.3f}s, cpu {q['cpu_time']:.3f}s, "
        f"binding {prof['planner']['binding_time']:.3f}s, "
        f"rows scanned {q['total_rows_scanned']:,}, bytes scanned {q['total_bytes_scanned']:,}",
        "operator CPU s, operator, rows out, details:",
    ]
    lines += [
        f"  {t:8.3f}  {name:<22} {rows:>12,}  {what[:160]}"
        for t, name, rows, what in sorted(ops, reverse=True)[:14]
    ]
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"\n===== DuckDB profile: {title}\n" + "\n".join(lines) + "\n")


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the code the benchmark runs differs from it."""

    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip()

    paths = ("warehouse", "filters", "generators", "cli")
    return {"commit": git("rev-parse", "HEAD"), "changed": git("status", "--short", *paths)}


# ---------------------------------------------------------------- report


def tables(points: list[Point]) -> list[Table]:
    def s(x: float) -> str:
        return f"{x:.3f}"

    t1 = Table(
        "point",
        "writer s",
        "write_table s",
        "ratio",
        "batch ratio (median)",
        "to_arrow s",
        "rows/s (writer)",
        "MB on disk",
        "columns, 1 call: ours / raw s",
        "same, 1 run",
        title="1. ingest: Warehouse.write vs pyarrow write_table (zstd), samples + verdicts; "
        "and the samples as Arrow columns in one call (Warehouse.write_table)",
    )
    t2 = Table(
        "point",
        "fresh s",
        "(open)",
        "(views)",
        "(select_prompts)",
        "(plan)",
        "warm s",
        "(select_prompts)",
        "(plan)",
        title="2. resume planning: Warehouse.open + select_prompts + plan, 16 missing draws",
    )
    t3 = Table(
        "point",
        "fresh s",
        "(views)",
        "warm s",
        title="3. verify planning: open_existing + select_pending, 16 unverified",
    )
    t4 = Table(
        "point",
        "Warehouse.query fresh s",
        "(views)",
        "warm s",
        "distillery sql s",
        "sql SELECT 1 s",
        "read_parquet floor s",
        "fresh / floor",
        title=f"4-6. {QUERY}",
    )
    t7 = Table(
        "point",
        "files before -> after",
        "compact s",
        "pass@k fresh s",
        "distillery sql s",
        "resume plan s",
        "verify plan s",
        "floor s",
        "+16 verdicts: pass@k / sql s",
        title="7. after `distillery compact` (--compact): the same measures, fresh handles; "
        "then with 16 verdicts written since (the roll-up's delta)",
    )
    for p in points:
        f = p.figures
        if "query" not in f or "same_as" in f:  # not measured, or a row already shown
            continue
        i, pl, vp, q = f["ingest"], f["plan"], f["verify_plan"], f["query"]
        t1.add_row(
            p.name,
            f"{i['writer_s']:.2f}",
            f"{i['raw_write_table_s']:.2f}",
            f"{i['ratio']:.2f}",
            f"{i['median_batch_ratio']:.2f}",
            f"{i['to_arrow_s']:.2f}",
            f"{i['writer_rows_per_s']:,.0f}",
            f"{i['disk_bytes'] / 1e6:.1f}",
            f"{i['columns_one_call']['ratio']:.2f}x "
            f"({i['columns_one_call']['write_table_s']:.2f} / "
            f"{i['columns_one_call']['raw_write_table_s']:.2f})",
            f"{i['columns_one_call_one_run']['ratio']:.2f}x",
        )
        fresh, warm = pl["fresh"], pl["warm"]
        t2.add_row(
            p.name,
            s(fresh["total_s"]),
            s(fresh["open_s"]),
            s(fresh["db_s"]),
            s(fresh["select_prompts_s"]),
            s(fresh["plan_s"]),
            s(warm["total_s"]),
            s(warm["select_prompts_s"]),
            s(warm["plan_s"]),
        )
        t3.add_row(
            p.name, s(vp["fresh"]["total_s"]), s(vp["fresh"]["db_s"]), s(vp["warm"]["total_s"])
        )
        t4.add_row(
            p.name,
            s(q["sql_fresh"]["total_s"]),
            s(q["sql_fresh"]["db_s"]),
            s(q["sql_warm"]["total_s"]),
            s(q["cli"]["total_s"]),
            s(q["cli_select_1"]["total_s"]),
            s(q["floor"]["total_s"]),
            f"{q['sql_fresh']['total_s'] / q['floor']['total_s']:.1f}x",
        )
        if "after_compact" in f:
            c, a = f["compact"], f["after_compact"]
            t7.add_row(
                p.name,
                f"{c['files_before']} -> {c['files_after']}",
                f"{c['s']:.1f}",
                s(a["sql_fresh"]["total_s"]),
                s(a["cli"]["total_s"]),
                s(a["plan_fresh"]["total_s"]),
                s(a["pending_fresh"]["total_s"]),
                s(a["floor"]["total_s"]),
                f"{s(d['sql_fresh']['total_s'])} / {s(d['cli']['total_s'])}"
                if (d := f.get("after_compact_delta"))
                else "-",
            )
    return [t1, t2, t3, t4, *([t7] if t7.row_count else [])]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10k,100k,1M", help="sample rows per point, e.g. 10k,1M,10M")
    p.add_argument("--files", default="100,1000,10000", help="files per table ('' for none)")
    p.add_argument("--files-rows", default="1M", help="rows of the file-count series")
    p.add_argument("--rows-per-file", default="10k", help="rows per file in the size series")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="10k,100k; 100,1000 files at 100k rows")
    p.add_argument("--profile", action="store_true", help="cProfile / EXPLAIN ANALYZE too")
    p.add_argument(
        "--compact", action="store_true", help="then compact, and measure the queries again"
    )
    p.add_argument("--out", type=Path, default=None, help="write all figures as JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.files, args.files_rows, args.repeats = "10k,100k", "100,1000", "100k", 3
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    started = time.perf_counter()

    def log(msg: str) -> None:
        console.print(f"[{time.perf_counter() - started:7.1f}s] {msg}", highlight=False)

    sizes = [parse_count(x) for x in args.sizes.split(",") if x.strip()]
    file_counts = [int(parse_count(x)) for x in args.files.split(",") if x.strip()]
    files_rows, per_file = parse_count(args.files_rows), parse_count(args.rows_per_file)
    points = [Point("size", n, max(1, -(-n // per_file))) for n in sizes]
    points += [Point("files", files_rows, f) for f in file_counts]
    for pt in points:
        if pt.rows % K or pt.rows % pt.files:
            raise SystemExit(f"{pt.name}: rows must divide into {K} per prompt and into files")
    data = Data()
    data.check_ids()
    profile = None
    if args.profile:
        profile = (args.out or Path("warehouse-bench.json")).with_suffix(".profile.txt")
        profile.write_text("", encoding="utf-8")
    payload: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "pyarrow": pa.__version__,
        },
        "code": code_version(),
        "query": QUERY,
        "repeats": args.repeats,
        "points": [],
    }
    # The last point of each series (the largest) is profiled.
    profiled = [
        ps[-1] for ps in ([p for p in points if p.series == x] for x in ("size", "files")) if ps
    ]
    work = Path(tempfile.mkdtemp(prefix="distillery-whbench-", dir="/tmp"))
    done: dict[tuple[int, int], Point] = {}
    try:
        for pt in points:
            same = done.get((pt.rows, pt.files))
            if same is not None:  # e.g. 1M rows at 10k a file is the 100-file point
                pt.figures = {**same.figures, "same_as": f"{same.series} {same.name}"}
                log(f"[bold]{pt.series}: {pt.name}[/] = {same.series} {same.name}, not rerun")
            else:
                measure(
                    pt,
                    data,
                    work,
                    args.repeats,
                    profile if pt in profiled else None,
                    log,
                    compacting=args.compact,
                )
                done[(pt.rows, pt.files)] = pt
            payload["points"].append(
                {"series": pt.series, "rows": pt.rows, "files": pt.files, **pt.figures}
            )
            if args.out:  # after each point, so a run cut short keeps what it measured
                args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    payload["wall_s"] = time.perf_counter() - started
    if args.out:
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for t in tables(points):
        console.print(t)
    console.print(
        f"wall {payload['wall_s']:.0f}s; fresh = a new handle per call (what each CLI command "
        f"pays), warm = one handle kept; medians of {args.repeats}"
        + (f"; JSON {args.out}" if args.out else "")
        + (f"; profiles {profile}" if profile else "")
    )


if __name__ == "__main__":
    main()
