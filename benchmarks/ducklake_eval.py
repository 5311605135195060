"""DuckLake against the present warehouse design, on issue 15's figures (1M sample rows).

Issue 15 asks to evaluate DuckLake (catalog in SQLite or PostgreSQL, data as Parquet)
against the present design (Parquet files per run + DuckDB views, `warehouse/`) on the
same figures as `benchmarks/warehouse.py`, and to adopt it if it serves users better.

Requirements (not project dependencies; the project runs DuckDB 2.0.1, and the ducklake
extension on PyPI is built for DuckDB 1.5.5 only, so it lives in its own venv):

    python3.11 -m venv /tmp/ducklake-venv
    /tmp/ducklake-venv/bin/pip install duckdb==1.5.5 duckdb-extension-ducklake==1.5.5 \\
        duckdb-extension-sqlite-scanner==1.5.5 pyarrow pytz

The extension packages ship the binary only (`duckdb_extension_ducklake/extensions/v1.5.5/
ducklake.duckdb_extension`); it is loaded with `LOAD '<that path>'`, no INSTALL, no network.
The package `duckdb-extension-sqlite` holds the same file as `-sqlite-scanner` but under a
name DuckDB refuses (it looks for `sqlite_duckdb_cpp_init`): load `sqlite_scanner`'s.

The driver (this file under the project's venv) makes the data with `benchmarks/
warehouse.py`'s generator (the same rows), writes the present design with the project's
own writer and reads it with its own handle, and drives a DuckLake worker (this file under
the DuckLake venv, `--worker`, JSON lines on stdin/stdout) that times its side in-process.
Within each measure the variants alternate (the starting one rotating); medians are
reported, and each ratio is DuckLake / present.

    .venv/bin/python benchmarks/ducklake_eval.py [--rows 1M] [--commits 100,1000]
        [--repeats 3] [--one-call-repeats 3] [--writer-commits 50]
        [--only ingest,queries,compact,writers,readers] [--work /tmp/ducklake-eval]
        [--lake-python /tmp/ducklake-venv/bin/python] [--out results.json]

The data (Arrow files) is made once per row count under --work and reused; 1M rows took
~7 min in all on 2 shared cores (results: benchmarks/RESULTS.md, "DuckLake against the
present design").

Measures: (a) ingest in one call and in N commits vs `pyarrow.parquet.write_table` (zstd);
(b) pass@k per family (the project's `prompt_outcomes` SQL, same text on both sides) from
a fresh handle, plus the no-dedup floor and `distillery sql` end to end against a one-shot
DuckLake process; (c) which of 16 new sample ids have no verdict, and every sample without
a verdict; (d) which of 16 sample ids exist, and the resume anti-join of every asked
(prompt, index); (e) all of it after 100 and 1,000 commits, and after compaction
(`distillery compact` / `ducklake_merge_adjacent_files` + expire + cleanup); (f) two
writer processes at once; (g) what pandas, polars, pyarrow.dataset, `datasets` and plain
DuckDB see when they read a DuckLake table's data folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAKE_PYTHON = "/tmp/ducklake-venv/bin/python"
K = 16
MODEL_ID = "mdl-bench"

# The same SQL on both sides; {samples}/{verdicts}/{prompts} are the table sources
# (the present design: `read_parquet` of the files; DuckLake: the lake's tables).
FLOOR = """
SELECT family, avg(pass_at_k(n, c, 1)) AS pass_at_1 FROM (
  SELECT s.model_id, s.prompt_id, p.suite, p.family, p.split,
         s.temperature, s.top_p, s.max_new_tokens, count(*) AS n, sum(v.passed::INT) AS c
  FROM {samples} s
  JOIN {prompts} p USING (prompt_id)
  JOIN {verdicts} v USING (sample_id)
  WHERE coalesce(s.procedure, 'sample') = 'sample'
  GROUP BY ALL
) GROUP BY 1
"""
PROBES = {
    # (c) which of these 16 new sample ids have no verdict
    "verify16": "SELECT w.id FROM wanted w ANTI JOIN (SELECT sample_id FROM {verdicts}) v "
    "ON v.sample_id = w.id",
    # (c') verify planning's shape: every sample without a verdict
    "verify_all": "SELECT s.sample_id FROM {samples} s ANTI JOIN "
    "(SELECT sample_id FROM {verdicts}) v USING (sample_id)",
    # (d) which of these 16 sample ids already exist
    "exists16": "SELECT DISTINCT s.sample_id FROM {samples} s SEMI JOIN wanted_old w "
    "ON s.sample_id = w.id",
    # (d') resume planning's shape: every asked (prompt, index) with no sample yet
    "resume_all": "WITH asked AS (SELECT a.prompt_id, r.idx FROM asked_prompts a, "
    "range(0, 16) r(idx)) SELECT prompt_id, list(idx ORDER BY idx) FROM asked ANTI JOIN "
    "(SELECT prompt_id, idx FROM {samples} WHERE model_id = 'mdl-bench') s "
    "USING (prompt_id, idx) GROUP BY prompt_id",
}
EXPECT = {"verify16": 16, "verify_all": 16, "exists16": 16, "resume_all": 1}


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def parquet_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*.parquet") if "_schema" not in p.parts)


# ====================================================================== DuckLake side
# Runs under the DuckLake venv: imports nothing of the project, only duckdb and pyarrow.


def _ext(name: str) -> str:
    import duckdb

    site = Path(duckdb.__file__).resolve().parents[1]
    pkg = {
        "ducklake": "duckdb_extension_ducklake",
        "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    }
    return str(
        site / pkg[name] / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    )


def lake_connect(lake: Path, defs: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """What a command pays on DuckLake: a database, both extensions, the catalog, views."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"LOAD '{_ext('ducklake')}'")
    con.execute(f"LOAD '{_ext('sqlite_scanner')}'")
    con.execute(
        f"ATTACH 'ducklake:sqlite:{lake}/catalog.sqlite' AS lake (DATA_PATH '{lake}/data/')"
    )
    if defs:
        for spec, order in (("prompts", "ASC"), ("models", "DESC")):
            key = "prompt_id" if spec == "prompts" else "model_id"
            con.execute(
                f"CREATE VIEW {spec} AS SELECT * FROM lake.main.{spec} QUALIFY row_number() "
                f"OVER (PARTITION BY {key} ORDER BY created_at {order}) = 1"
            )
        con.execute("CREATE VIEW raw_samples AS SELECT * FROM lake.main.samples")
        con.execute("CREATE VIEW raw_verdicts AS SELECT * FROM lake.main.verdicts")
        con.execute(defs["macro"])
        con.execute(defs["prompt_outcomes"])
    return con


LAKE_SOURCES = {t: f"lake.main.{t}" for t in ("samples", "verdicts", "prompts")}


class Worker:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.lake: Path | None = None
        self.con = None
        self.rcon = None  # a reader connection kept open (warm queries)
        self.defs: dict[str, str] = {}

    def op_load(self, dir: str, defs: dict[str, str]) -> dict[str, Any]:
        import pyarrow.feather as feather

        for name in ("samples", "verdicts", "prompts", "models", "new16", "wanted", "asked"):
            self.data[name] = feather.read_table(f"{dir}/{name}.arrow")
        self.defs = defs
        return {"rows": self.data["samples"].num_rows}

    def op_create(self, lake: str, tables: list[str]) -> dict[str, Any]:
        """A new lake holding empty tables of the project's schemas, prompts and models."""
        self.op_close()
        self.lake = Path(lake)
        shutil.rmtree(self.lake, ignore_errors=True)
        self.lake.mkdir(parents=True)
        con = self.con = lake_connect(self.lake)
        con.execute("CALL lake.set_option('parquet_compression', 'zstd')")
        for t in tables:
            con.register("src", self.data[t])
            con.execute(f"CREATE TABLE lake.main.{t} AS SELECT * FROM src LIMIT 0")
            con.unregister("src")
        for t in ("prompts", "models"):
            if t in tables:
                con.register("src", self.data[t])
                con.execute(f"INSERT INTO lake.main.{t} SELECT * FROM src")
                con.unregister("src")
        return {}

    def op_insert(self, table: str, lo: int, hi: int, also: str | None = None) -> dict[str, Any]:
        """One commit: rows [lo, hi) of `table` (and of `also`, the same rows' verdicts)."""
        con = self.con
        parts = [(table, self.data[table].slice(lo, hi - lo))]
        if also:
            parts.append((also, self.data[also].slice(lo, hi - lo)))
        for i, (_, arrow) in enumerate(parts):
            con.register(f"part{i}", arrow)

        def go() -> None:
            con.execute("BEGIN")
            for i, (t, _) in enumerate(parts):
                con.execute(f"INSERT INTO lake.main.{t} SELECT * FROM part{i}")
            con.execute("COMMIT")

        s, _ = timed(go)
        for i in range(len(parts)):
            con.unregister(f"part{i}")
        return {"s": s}

    def op_new16(self) -> dict[str, Any]:
        self.con.register("src", self.data["new16"])
        self.con.execute("INSERT INTO lake.main.samples SELECT * FROM src")
        self.con.unregister("src")
        return {}

    def _probe_tables(self, con) -> None:  # type: ignore[no-untyped-def]
        con.register("wanted", self.data["new16"].select(["sample_id"]).rename_columns(["id"]))
        con.register("wanted_old", self.data["wanted"])
        con.register("asked_prompts", self.data["asked"])

    def op_query(self, kind: str, root: str | None = None, warm: bool = False) -> dict[str, Any]:
        """A fresh handle (connect, load, attach, views), then the query; `warm`: on one
        connection kept open (made, untimed, on first use), as a flow's tasks would."""
        if warm and self.rcon is None:
            self.rcon = lake_connect(self.lake, self.defs)
            self._probe_tables(self.rcon)
        t0 = time.perf_counter()
        if kind == "open":
            con = lake_connect(self.lake, self.defs)
            rows = con.execute("SELECT 1").fetchall()
        elif kind == "floor_ours_files":  # the engine control: DuckDB 1.5.5 on our files
            import duckdb

            con = duckdb.connect()
            con.execute(self.defs["macro"])
            src = {
                t: f"read_parquet('{root}/tables/{t}/*/*.parquet', union_by_name = true, "
                f"hive_partitioning = false)"
                for t in ("samples", "verdicts", "prompts")
            }
            rows = con.execute(FLOOR.format(**src)).fetchall()
        else:
            con = self.rcon if warm else lake_connect(self.lake, self.defs)
            if kind == "passk":
                rows = con.execute(self.defs["query"]).fetchall()
            elif kind == "floor":
                rows = con.execute(FLOOR.format(**LAKE_SOURCES)).fetchall()
            else:
                if not warm:
                    self._probe_tables(con)
                rows = con.execute(PROBES[kind].format(**LAKE_SOURCES)).fetchall()
        s = time.perf_counter() - t0
        if not warm:
            con.close()
        return {
            "s": s,
            "rows": [list(r) for r in rows]
            if kind in ("passk", "floor", "floor_ours_files")
            else len(rows),
        }

    def op_open_parts(self, repeats: int = 5) -> dict[str, Any]:
        """Where a fresh DuckLake handle's time goes (medians)."""
        import duckdb

        parts: dict[str, list[float]] = {
            k: [] for k in ("connect", "load_ducklake", "load_sqlite", "attach", "views")
        }
        for _ in range(repeats):
            t = time.perf_counter()
            con = duckdb.connect()
            parts["connect"].append(time.perf_counter() - t)
            for name, key in (("ducklake", "load_ducklake"), ("sqlite_scanner", "load_sqlite")):
                t = time.perf_counter()
                con.execute(f"LOAD '{_ext(name)}'")
                parts[key].append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(f"ATTACH 'ducklake:sqlite:{self.lake}/catalog.sqlite' AS lake")
            parts["attach"].append(time.perf_counter() - t)
            t = time.perf_counter()
            for spec in ("prompts", "models"):
                con.execute(f"CREATE VIEW {spec} AS SELECT * FROM lake.main.{spec}")
            con.execute("CREATE VIEW raw_samples AS SELECT * FROM lake.main.samples")
            con.execute("CREATE VIEW raw_verdicts AS SELECT * FROM lake.main.verdicts")
            con.execute(self.defs["macro"])
            con.execute(self.defs["prompt_outcomes"])
            parts["views"].append(time.perf_counter() - t)
            con.close()
        return {k: statistics.median(v) for k, v in parts.items()}

    def op_files(self) -> dict[str, Any]:
        con = self.con
        listed = sum(
            con.execute(f"SELECT count(*) FROM ducklake_list_files('lake', '{t}')").fetchone()[0]
            for t in ("samples", "verdicts")
        )
        data = self.lake / "data" / "main"
        return {
            "listed": listed,
            "on_disk": parquet_files(data / "samples") + parquet_files(data / "verdicts"),
            "catalog_bytes": (self.lake / "catalog.sqlite").stat().st_size,
            "snapshots": con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()[0],
        }

    def op_compact(self) -> dict[str, Any]:
        """DuckLake's compaction: merge adjacent files (a new snapshot; the old files stay
        for time travel), then expire the old snapshots and delete the files no snapshot
        needs, so that the data folder holds only live files."""
        con = self.con
        before = self.op_files()
        t_merge, merged = timed(
            lambda: con.execute("CALL ducklake_merge_adjacent_files('lake')").fetchall()
        )
        mid = self.op_files()
        t_expire, _ = timed(
            lambda: con.execute(
                "CALL ducklake_expire_snapshots('lake', older_than => now())"
            ).fetchall()
        )
        t_clean, _ = timed(
            lambda: con.execute(
                "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)"
            ).fetchall()
        )
        after = self.op_files()
        return {
            "merge_s": t_merge,
            "expire_s": t_expire,
            "cleanup_s": t_clean,
            "s": t_merge + t_expire + t_clean,
            "merged": [list(m) for m in merged],
            "before": before,
            "after_merge": mid,
            "after": after,
        }

    def op_close(self) -> dict[str, Any]:
        if self.rcon is not None:
            self.rcon.close()
            self.rcon = None
        if self.con is not None:
            self.con.close()
            self.con = None
        return {}

    def op_readers_lake(self, lake: str, stage: str) -> dict[str, Any]:
        """(g): a small lake changed stage by stage; the driver reads its folder between."""
        con = self.con
        if stage == "create":
            self.op_close()
            self.lake = Path(lake)
            shutil.rmtree(self.lake, ignore_errors=True)
            self.lake.mkdir(parents=True)
            con = self.con = lake_connect(self.lake)
            s = self.data["samples"]
            con.register("src", s.slice(0, 0))
            con.execute("CREATE TABLE lake.main.samples AS SELECT * FROM src")
            con.unregister("src")
            # Three commits of 20, 75 and 5 rows (5 <= the inlining limit of 10 rows).
            for lo, hi in ((0, 20), (20, 95), (95, 100)):
                con.register("src", s.slice(lo, hi - lo))
                con.execute("INSERT INTO lake.main.samples SELECT * FROM src")
                con.unregister("src")
        elif stage == "delete_update":
            # A verdict re-run or a purge: delete 10 rows, correct one.
            con.execute("DELETE FROM lake.main.samples WHERE idx = 3 OR idx = 9")
            con.execute(
                "UPDATE lake.main.samples SET text = 'corrected' WHERE idx = 5 AND rowid < 20"
            )
        elif stage == "flush":
            con.execute("CALL ducklake_flush_inlined_data('lake')").fetchall()
        elif stage == "merge":
            # Apply the deletes (rewrite files that have any), then merge small files.
            con.execute(
                "CALL ducklake_rewrite_data_files('lake', delete_threshold => 0)"
            ).fetchall()
            con.execute("CALL ducklake_merge_adjacent_files('lake')").fetchall()
        elif stage == "cleanup":
            con.execute("CALL ducklake_expire_snapshots('lake', older_than => now())").fetchall()
            con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)").fetchall()
        rows = con.execute("SELECT count(*) FROM lake.main.samples").fetchone()[0]
        corrected = con.execute(
            "SELECT count(*) FROM lake.main.samples WHERE text = 'corrected'"
        ).fetchone()[0]
        folder = self.lake / "data" / "main" / "samples"
        files = sorted(p.name for p in folder.glob("*.parquet"))
        return {"rows": rows, "corrected": corrected, "folder": str(folder), "files": files}


def worker_main() -> None:
    w = Worker()
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.pop("op")
        try:
            out = {"ok": True, **getattr(w, f"op_{op}")(**msg)}
        except Exception as exc:  # reported to the driver, which decides
            out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out, default=str) + "\n")
        sys.stdout.flush()


def oneshot_main(lake: str, defs_path: str) -> None:
    """`distillery sql`'s DuckLake twin: a new process, connect, load, attach, query, CSV."""
    defs = json.loads(Path(defs_path).read_text())
    con = lake_connect(Path(lake), defs)
    for row in con.execute(defs["query"]).fetchall():
        print(",".join(str(x) for x in row))


def count_main(lake: str) -> None:
    """Rows in a lake's samples and verdicts, and its snapshots (after two writers)."""
    con = lake_connect(Path(lake))
    one = con.execute(
        "SELECT count(*), count(DISTINCT sample_id) FROM lake.main.samples"
    ).fetchone()
    verdicts = con.execute("SELECT count(*) FROM lake.main.verdicts").fetchone()[0]
    snapshots = con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()[0]
    # Files a failed commit wrote stay in the folder (orphans), unknown to the catalog.
    listed = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'samples')").fetchone()
    on_disk = parquet_files(Path(lake) / "data" / "main" / "samples")
    rows_on_disk = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/data/main/samples/*.parquet')"
    ).fetchone()[0]
    print(
        json.dumps(
            {
                "samples": list(one),
                "verdicts": verdicts,
                "snapshots": snapshots,
                "sample_files_listed": listed[0],
                "sample_files_on_disk": on_disk,
                "sample_rows_in_folder": rows_on_disk,
            }
        )
    )


def file_catalog_main(work: str, role: str) -> None:
    """A DuckDB-file catalog (`ducklake:x.ducklake`, the default) used by a second
    process while a first holds it: `first` attaches, then runs `second`."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"LOAD '{_ext('ducklake')}'")
    con.execute(f"ATTACH 'ducklake:{work}/x.ducklake' AS l (DATA_PATH '{work}/xdata/')")
    if role == "second":
        con.execute("INSERT INTO l.t VALUES (1)")
        print("ok")
        return
    con.execute("CREATE TABLE l.t (i INT)")
    me = [sys.executable, str(Path(__file__).resolve()), "--file-catalog", work, "second"]
    p = subprocess.run(me, capture_output=True, text=True)
    err = p.stderr.strip().splitlines()
    print(p.returncode, err[-1] if err else p.stdout.strip())


def writer_main(lake: str, data: str, lo: int, commits: int, per: int, go: str) -> None:
    """(f) one of two writer processes: `commits` commits of `per` samples + verdicts.
    DUCKLAKE_EVAL_RETRIES > 0: the application retries a failed commit that many times
    (DuckLake's own retry, `ducklake_max_retry_count`, is on in both cases)."""
    retries = int(os.environ.get("DUCKLAKE_EVAL_RETRIES", "0"))
    import pyarrow.feather as feather

    samples = feather.read_table(f"{data}/samples.arrow")
    verdicts = feather.read_table(f"{data}/verdicts.arrow")
    con = lake_connect(Path(lake))
    while not Path(go).exists():
        time.sleep(0.01)
    errors: Counter[str] = Counter()
    ok, lat, retried = 0, [], 0
    t0 = time.perf_counter()
    for c in range(commits):
        a = lo + c * per
        con.register("s", samples.slice(a, per))
        con.register("v", verdicts.slice(a, per))
        t = time.perf_counter()
        for attempt in range(retries + 1):
            try:
                con.execute("BEGIN")
                con.execute("INSERT INTO lake.main.samples SELECT * FROM s")
                con.execute("INSERT INTO lake.main.verdicts SELECT * FROM v")
                con.execute("COMMIT")
                ok += 1
                lat.append(time.perf_counter() - t)
                break
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                if attempt < retries:
                    retried += 1
                    time.sleep(0.05 * (attempt + 1))
    print(
        json.dumps(
            {
                "ok": ok,
                "app_retries": retried,
                "errors": dict(errors),
                "s": time.perf_counter() - t0,
                "median_commit_s": statistics.median(lat) if lat else None,
                "max_commit_s": max(lat) if lat else None,
            }
        )
    )


# ====================================================================== present design side
# Runs under the project's venv (DuckDB 2.0.1).


def our_writer_main(root: str, data: str, lo: int, commits: int, per: int, go: str) -> None:
    """(f) the present design's twin: the project's writer from a second process."""
    import pyarrow.feather as feather

    from distillery.warehouse.store import Warehouse

    samples = feather.read_table(f"{data}/samples.arrow")
    verdicts = feather.read_table(f"{data}/verdicts.arrow")
    wh = Warehouse.open(root)
    while not Path(go).exists():
        time.sleep(0.01)
    errors: Counter[str] = Counter()
    ok, lat = 0, []
    t0 = time.perf_counter()
    for c in range(commits):
        a = lo + c * per
        t = time.perf_counter()
        try:
            wh.write_table("samples", samples.slice(a, per))
            wh.write_table("verdicts", verdicts.slice(a, per))
            ok += 1
            lat.append(time.perf_counter() - t)
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
    print(
        json.dumps(
            {
                "ok": ok,
                "errors": dict(errors),
                "s": time.perf_counter() - t0,
                "median_commit_s": statistics.median(lat) if lat else None,
                "max_commit_s": max(lat) if lat else None,
            }
        )
    )


class Lake:
    """The driver's end of a worker process."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def __call__(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"DuckLake worker died during {op}")
        out = json.loads(line)
        if not out.pop("ok"):
            raise RuntimeError(f"DuckLake {op}: {out['error']}")
        return out

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def load_bench():  # type: ignore[no-untyped-def]
    """`benchmarks/warehouse.py` as a module (its generator, query and CLI helper)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("warehouse_bench", HERE / "warehouse.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["warehouse_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


def make_data(bench, rows: int, out: Path, log) -> None:  # type: ignore[no-untyped-def]
    """The same rows as `benchmarks/warehouse.py`, as Arrow (feather) files both sides load."""
    import pyarrow as pa
    import pyarrow.feather as feather

    from distillery.warehouse import writer_parquet
    from distillery.warehouse.tables import TABLES

    if (out / "done").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    data = bench.Data()
    data.check_ids()
    prompts = rows // K + 1  # the last has no draw yet: the 16 new samples are its
    feather.write_feather(
        writer_parquet.to_arrow(TABLES["prompts"], data.prompts(prompts)), out / "prompts.arrow"
    )
    feather.write_feather(
        writer_parquet.to_arrow(TABLES["models"], [bench.model_record()]), out / "models.arrow"
    )
    s_parts, v_parts = [], []
    step = 50_000
    for first in range(0, rows, step):
        s, v = data.samples(first, min(step, rows - first))
        s_parts.append(writer_parquet.to_arrow(TABLES["samples"], s))
        v_parts.append(writer_parquet.to_arrow(TABLES["verdicts"], v))
        log(f"  data: {first + len(s):,} / {rows:,} rows")
    feather.write_feather(pa.concat_tables(s_parts).combine_chunks(), out / "samples.arrow")
    feather.write_feather(pa.concat_tables(v_parts).combine_chunks(), out / "verdicts.arrow")
    new, _ = data.samples(rows, K, run_id="run-new", verdicts=False)
    feather.write_feather(writer_parquet.to_arrow(TABLES["samples"], new), out / "new16.arrow")
    # 16 sample ids that exist (prompt 0's draws), and every prompt id plus one unknown
    # (resume planning asks for all; only the unknown one's 16 draws are missing).
    feather.write_feather(
        pa.table({"id": [data.sample_id(0, i) for i in range(K)]}), out / "wanted.arrow"
    )
    ids = [data.prompt_id(i) for i in range(prompts)] + ["prm-not-sampled-yet"]
    feather.write_feather(pa.table({"prompt_id": ids}), out / "asked.arrow")
    (out / "done").write_text("")


class Ours:
    """The present design: the project's writer, handle and SQL."""

    def __init__(self, bench, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
        import pyarrow.feather as feather

        self.bench = bench
        self.t = {
            n: feather.read_table(data_dir / f"{n}.arrow")
            for n in ("samples", "verdicts", "prompts", "models", "new16", "wanted", "asked")
        }

    def create(self, root: Path) -> None:
        from distillery.warehouse.store import Warehouse

        shutil.rmtree(root, ignore_errors=True)
        self.wh = Warehouse.open(root)
        self.root = root
        self.warm = None
        self.wh.write_table("prompts", self.t["prompts"])
        self.wh.write_table("models", self.t["models"])

    def insert(self, lo: int, hi: int) -> float:
        def go() -> None:
            self.wh.write_table("samples", self.t["samples"].slice(lo, hi - lo))
            self.wh.write_table("verdicts", self.t["verdicts"].slice(lo, hi - lo))

        return timed(go)[0]

    def new16(self) -> None:
        self.wh.write_table("samples", self.t["new16"])

    def files(self) -> int:
        return parquet_files(self.root / "tables" / "samples") + parquet_files(
            self.root / "tables" / "verdicts"
        )

    def query(self, kind: str, warm: bool = False) -> dict[str, Any]:
        import duckdb

        from distillery.warehouse.catalog_duckdb import files_sql
        from distillery.warehouse.passk import PASS_AT_K_MACRO
        from distillery.warehouse.store import Warehouse

        if warm and self.warm is None:
            self.warm = Warehouse.open_existing(self.root)
            self.warm.query("SELECT 1")
        t0 = time.perf_counter()
        if kind == "open":
            rows = Warehouse.open_existing(self.root).query("SELECT 1")
        elif kind == "passk":
            wh = self.warm if warm else Warehouse.open_existing(self.root)
            rows = wh.query(self.bench.QUERY)
        elif kind == "floor":
            con = duckdb.connect()
            con.execute(PASS_AT_K_MACRO)
            src = {t: files_sql(self.root, t) for t in ("samples", "verdicts", "prompts")}
            rows = con.execute(FLOOR.format(**src)).fetchall()
            con.close()
        else:
            wh = self.warm if warm else Warehouse.open_existing(self.root)
            src = {t: files_sql(self.root, t) for t in ("samples", "verdicts", "prompts")}

            def read(con):  # type: ignore[no-untyped-def]
                con.register("wanted", self.t["new16"].select(["sample_id"]).rename_columns(["id"]))
                con.register("wanted_old", self.t["wanted"])
                con.register("asked_prompts", self.t["asked"])
                return con.execute(PROBES[kind].format(**src)).fetchall()

            rows = wh.read(read)
        s = time.perf_counter() - t0
        return {
            "s": s,
            "rows": [list(r) for r in rows] if kind in ("passk", "floor") else len(rows),
        }


def same_passk(a: list[list[Any]], b: list[list[Any]]) -> bool:
    a, b = sorted(map(tuple, a)), sorted(map(tuple, b))
    if len(a) != len(b):
        return False
    return all(x[0] == y[0] and abs(x[1] - y[1]) < 1e-9 for x, y in zip(a, b, strict=True))


def measure_queries(
    ours: Ours, lake: Lake, lake_python: str, defs_path: Path, lake_dir: Path, repeats: int, log
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    bench = ours.bench
    variants: dict[str, Any] = {}
    for kind in ("passk", "floor", *PROBES):
        variants[f"ours:{kind}"] = lambda kind=kind: ours.query(kind)
        variants[f"lake:{kind}"] = lambda kind=kind: lake("query", kind=kind)
    for kind in ("passk", "verify16", "resume_all"):
        variants[f"ours:{kind}_warm"] = lambda kind=kind: ours.query(kind, warm=True)
        variants[f"lake:{kind}_warm"] = lambda kind=kind: lake("query", kind=kind, warm=True)
    variants["ours:open"] = lambda: ours.query("open")
    variants["lake:open"] = lambda: lake("query", kind="open")
    variants["lake155:floor_ours_files"] = lambda: lake(
        "query", kind="floor_ours_files", root=str(ours.root)
    )

    def lake_oneshot() -> dict[str, Any]:
        cmd = [
            lake_python,
            str(Path(__file__).resolve()),
            "--oneshot",
            str(lake_dir),
            str(defs_path),
        ]
        s, proc = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        return {"s": s}

    variants["ours:cli"] = lambda: {"s": bench.cli(ours.root, bench.QUERY)}
    variants["lake:cli"] = lake_oneshot
    runs = bench.rotate(variants, repeats)
    out: dict[str, Any] = {}
    for name, values in runs.items():
        out[name] = {
            "median_s": statistics.median(v["s"] for v in values),
            "runs_s": [v["s"] for v in values],
        }
        if "rows" in values[0]:
            out[name]["rows"] = values[0]["rows"]
    # The two designs answer alike.
    assert same_passk(out["ours:passk"]["rows"], out["lake:passk"]["rows"]), (
        out["ours:passk"],
        out["lake:passk"],
    )
    assert same_passk(out["ours:passk"]["rows"], out["lake:passk_warm"]["rows"])
    assert out["ours:verify16_warm"]["rows"] == 16 == out["lake:verify16_warm"]["rows"]
    assert same_passk(out["ours:floor"]["rows"], out["lake:floor"]["rows"])
    assert same_passk(out["ours:floor"]["rows"], out["lake155:floor_ours_files"]["rows"])
    for kind, n in EXPECT.items():
        assert out[f"ours:{kind}"]["rows"] == n == out[f"lake:{kind}"]["rows"], (
            kind,
            out[f"ours:{kind}"],
            out[f"lake:{kind}"],
        )
    for kind in (
        "open",
        "passk",
        "passk_warm",
        "floor",
        *PROBES,
        "verify16_warm",
        "resume_all_warm",
        "cli",
    ):
        o, l_ = out[f"ours:{kind}"]["median_s"], out[f"lake:{kind}"]["median_s"]
        log(f"    {kind:<15} ours {o:7.3f}s  lake {l_:7.3f}s  lake/ours {l_ / o:5.2f}x")
    control = out["lake155:floor_ours_files"]["median_s"]
    log(f"    floor on our files with DuckDB 1.5.5: {control:.3f}s")
    return out


def ingest_one_call(ours: Ours, lake: Lake, work: Path, repeats: int, log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """(a) all the sample rows in one call: our writer, DuckLake, raw write_table (zstd)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillery.warehouse import writer_parquet

    s = ours.t["samples"]
    # As an import writes them: one run, so one file (as warehouse.py's `same, 1 run`).
    one_run = s.set_column(
        s.schema.get_field_index("run_id"), "run_id", pa.repeat(pa.scalar("run-import"), s.num_rows)
    )

    def ours_fn() -> dict[str, float]:
        target = work / "one-ours"
        shutil.rmtree(target, ignore_errors=True)
        t = timed(lambda: writer_parquet.write_table(target, "samples", one_run))[0]
        shutil.rmtree(target, ignore_errors=True)
        return {"s": t}

    def raw_fn() -> dict[str, float]:
        p = work / "one-raw.parquet"
        t = timed(lambda: pq.write_table(one_run, p, compression="zstd"))[0]
        p.unlink()
        return {"s": t}

    def lake_fn() -> dict[str, float]:
        lake("create", lake=str(work / "one-lake"), tables=["samples"])
        t = lake("insert", table="samples", lo=0, hi=s.num_rows)["s"]
        lake("close")
        shutil.rmtree(work / "one-lake", ignore_errors=True)
        return {"s": t}

    runs = ours.bench.rotate({"ours": ours_fn, "raw": raw_fn, "lake": lake_fn}, repeats)
    out = {
        k: {"median_s": statistics.median(v["s"] for v in vs), "runs_s": [v["s"] for v in vs]}
        for k, vs in runs.items()
    }
    r = out["raw"]["median_s"]
    log(
        f"  ingest one call of {s.num_rows:,}: ours {out['ours']['median_s']:.2f}s "
        f"({out['ours']['median_s'] / r:.2f}x raw), lake {out['lake']['median_s']:.2f}s "
        f"({out['lake']['median_s'] / r:.2f}x raw), raw {r:.2f}s"
    )
    return out


def ingest_commits(ours: Ours, lake: Lake, work: Path, commits: int, log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """(a)/(e) the rows in `commits` batches of samples + verdicts, alternating per batch."""
    import pyarrow.parquet as pq

    rows = ours.t["samples"].num_rows
    per = rows // commits
    ours.create(work / f"ours-{commits}")
    lake(
        "create",
        lake=str(work / f"lake-{commits}"),
        tables=["prompts", "models", "samples", "verdicts"],
    )
    scratch = work / "raw"
    scratch.mkdir(exist_ok=True)
    tot = {"ours": 0.0, "lake": 0.0, "raw": 0.0}

    def raw(lo: int) -> float:
        def go() -> None:
            for t in ("samples", "verdicts"):
                part = ours.t[t].slice(lo, per)
                pq.write_table(part, scratch / f"{t}.parquet", compression="zstd")

        return timed(go)[0]

    for b in range(commits):
        lo, hi = b * per, (b + 1) * per
        fns = {
            "ours": lambda lo=lo, hi=hi: ours.insert(lo, hi),
            "lake": lambda lo=lo, hi=hi: lake(
                "insert", table="samples", lo=lo, hi=hi, also="verdicts"
            )["s"],
            "raw": lambda lo=lo: raw(lo),
        }
        names = list(fns)
        for n in names[b % 3 :] + names[: b % 3]:
            tot[n] += fns[n]()
        if (b + 1) % max(1, commits // 5) == 0:
            log(
                f"    {b + 1}/{commits} commits: ours {tot['ours']:.1f}s "
                f"lake {tot['lake']:.1f}s raw {tot['raw']:.1f}s"
            )
    ours.new16()
    lake("new16")
    files = {"ours": ours.files(), "lake": lake("files")}
    log(
        f"  ingest in {commits} commits: ours {tot['ours']:.2f}s "
        f"({tot['ours'] / tot['raw']:.2f}x raw), lake {tot['lake']:.2f}s "
        f"({tot['lake'] / tot['raw']:.2f}x raw), raw {tot['raw']:.2f}s; files {files}"
    )
    return {"per_commit_rows": per, **{f"{k}_s": v for k, v in tot.items()}, "files": files}


def multi_writer(args, data_dir: Path, work: Path, lake: Lake, log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """(f) two processes committing at once: DuckLake on a SQLite catalog; our writer."""
    commits, per = args.writer_commits, 1_000
    out: dict[str, Any] = {"commits_each": commits, "rows_per_commit": per}
    for side in ("lake", "lake_app_retry", "ours"):
        target = work / f"mw-{side}"
        go = work / f"mw-{side}.go"
        go.unlink(missing_ok=True)
        env = {**os.environ, "DUCKLAKE_EVAL_RETRIES": "20" if side == "lake_app_retry" else "0"}
        if side.startswith("lake"):
            lake("create", lake=str(target), tables=["samples", "verdicts"])
            lake("close")
            cmd = [args.lake_python, str(Path(__file__).resolve()), "--writer"]
        else:
            shutil.rmtree(target, ignore_errors=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--our-writer"]
        procs = [
            subprocess.Popen(
                [
                    *cmd,
                    str(target),
                    str(data_dir),
                    str(i * commits * per),
                    str(commits),
                    str(per),
                    str(go),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(2)
        ]
        time.sleep(3)  # both loaded and attached
        t0 = time.perf_counter()
        go.write_text("")
        results = []
        for p in procs:
            o, e = p.communicate(timeout=1800)
            results.append(
                json.loads(o.strip().splitlines()[-1])
                if p.returncode == 0 and o.strip()
                else {"rc": p.returncode, "stderr": e[-1500:]}
            )
        wall = time.perf_counter() - t0
        # Rows as each side's readers see them afterwards.
        if side.startswith("lake"):
            check = subprocess.run(
                [args.lake_python, str(Path(__file__).resolve()), "--count", str(target)],
                capture_output=True,
                text=True,
            )
            seen = json.loads(check.stdout) if check.returncode == 0 else check.stderr[-800:]
        else:
            import duckdb

            from distillery.warehouse.tables import TABLES

            con = duckdb.connect()
            files = {t: f"read_parquet('{target}/tables/{t}/*/*.parquet')" for t in TABLES}
            seen = [
                con.execute(
                    f"SELECT count(*), count(DISTINCT sample_id) FROM {files['samples']}"
                ).fetchone(),
                con.execute(f"SELECT count(*) FROM {files['verdicts']}").fetchone()[0],
            ]
            con.close()
        out[side] = {
            "writers": results,
            "wall_s": wall,
            "seen": seen,
            "expected_rows": 2 * commits * per,
        }
        log(
            f"  two writers, {side}: wall {wall:.1f}s, {results}, rows seen {seen} "
            f"(expected {2 * commits * per})"
        )
        shutil.rmtree(target, ignore_errors=True)
    # A DuckDB-file catalog (the default `ducklake:file.ducklake`) in two processes at once.
    hold = [args.lake_python, str(Path(__file__).resolve()), "--file-catalog", str(work)]
    probe = subprocess.run([*hold, "first"], capture_output=True, text=True)
    out["duckdb_file_catalog_second_process"] = (probe.stdout + probe.stderr).strip()[-600:]
    log(f"  DuckDB-file catalog, second process: {out['duckdb_file_catalog_second_process']}")
    return out


def readers(lake: Lake, work: Path, log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """(g) what the readers the present design supports see in a DuckLake data folder."""
    import duckdb

    from distillery.warehouse.tables import TABLES

    def read_all(folder: str) -> dict[str, Any]:
        res: dict[str, Any] = {}

        def attempt(name: str, fn) -> None:  # type: ignore[no-untyped-def]
            try:
                res[name] = fn()
            except Exception as exc:
                res[name] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}"

        def pandas_fn() -> Any:
            import pandas as pd

            df = pd.read_parquet(folder)
            return {
                "rows": len(df),
                "corrected": int((df.get("text") == "corrected").sum()) if "text" in df else None,
            }

        def polars_fn() -> Any:
            import polars as pl

            df = pl.read_parquet(f"{folder}/*.parquet")
            return {
                "rows": df.height,
                "corrected": int((df["text"] == "corrected").sum())
                if "text" in df.columns
                else None,
            }

        def dataset_fn() -> Any:
            import pyarrow.dataset as pds

            t = pds.dataset(folder, format="parquet").to_table()
            extra = sorted(set(t.column_names) - set(TABLES["samples"].columns))
            return {"rows": t.num_rows, "extra_columns": extra}

        def hf_fn() -> Any:
            import datasets

            d = datasets.load_dataset(
                "parquet",
                data_files=f"{folder}/*.parquet",
                split="train",
                cache_dir=str(work / "hf-cache"),
            )
            return {"rows": d.num_rows}

        def duck_fn() -> Any:
            con = duckdb.connect()
            r = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE text = 'corrected') "
                f"FROM read_parquet('{folder}/*.parquet', union_by_name = true)"
            ).fetchone()
            return {"rows": r[0], "corrected": r[1]}

        for name, fn in (
            ("pandas", pandas_fn),
            ("polars", polars_fn),
            ("pyarrow.dataset", dataset_fn),
            ("datasets", hf_fn),
            ("duckdb 2.0.1 read_parquet", duck_fn),
        ):
            attempt(name, fn)
        return res

    out = {}
    for stage in ("create", "delete_update", "flush", "merge", "cleanup"):
        st = lake("readers_lake", lake=str(work / "readers-lake"), stage=stage)
        seen = read_all(st["folder"])
        out[stage] = {
            "lake_rows": st["rows"],
            "lake_corrected": st["corrected"],
            "files": st["files"],
            "seen": seen,
        }
        log(
            f"  readers after {stage}: DuckLake says {st['rows']} rows "
            f"({st['corrected']} corrected), {len(st['files'])} files "
            f"{[f[-20:] for f in st['files']]}; readers: {seen}"
        )
    lake("close")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="1M")
    p.add_argument("--commits", default="100,1000", help="batch-ingest points (commits)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one-call-repeats", type=int, default=3)
    p.add_argument("--writer-commits", type=int, default=50)
    p.add_argument("--lake-python", default=LAKE_PYTHON)
    p.add_argument("--work", type=Path, default=Path("/tmp/ducklake-eval"))
    p.add_argument("--only", default="ingest,queries,compact,writers,readers")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    bench = load_bench()
    rows = bench.parse_count(args.rows)
    only = set(args.only.split(","))
    data_dir = args.work / f"data-{rows}"
    make_data(bench, rows, data_dir, log)
    from distillery.warehouse.passk import PASS_AT_K_MACRO
    from distillery.warehouse.queries import PROMPT_OUTCOMES

    defs = {"macro": PASS_AT_K_MACRO, "prompt_outcomes": PROMPT_OUTCOMES, "query": bench.QUERY}
    defs_path = args.work / "defs.json"
    defs_path.write_text(json.dumps(defs))
    import duckdb

    lake_version = subprocess.run(
        [args.lake_python, "-c", "import duckdb; print(duckdb.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    payload: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
        "duckdb_ours": duckdb.__version__,
        "duckdb_lake": lake_version,
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
    }

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")

    ours = Ours(bench, data_dir)
    lake = Lake(args.lake_python)
    lake("load", dir=str(data_dir), defs=defs)
    work = args.work / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if "ingest" in only:
            payload["ingest_one_call"] = ingest_one_call(
                ours, lake, work, args.one_call_repeats, log
            )
            save()
        for commits in [int(bench.parse_count(c)) for c in args.commits.split(",") if c]:
            if not ({"ingest", "queries", "compact"} & only):
                break
            log(f"[{commits} commits]")
            point: dict[str, Any] = payload.setdefault("commits", {}).setdefault(str(commits), {})
            point["ingest"] = ingest_commits(ours, lake, work, commits, log)
            save()
            if "queries" in only:
                point["queries"] = measure_queries(
                    ours,
                    lake,
                    args.lake_python,
                    defs_path,
                    work / f"lake-{commits}",
                    args.repeats,
                    log,
                )
                point["lake_open_parts"] = lake("open_parts")
                log(f"  a fresh DuckLake handle, medians: {point['lake_open_parts']}")
                save()
            if "compact" in only and commits == max(
                int(bench.parse_count(c)) for c in args.commits.split(",")
            ):
                from distillery.warehouse.compact import compact

                t, report = timed(lambda: compact(ours.root))
                point["compact_ours"] = {
                    "s": t,
                    "files_before": report.files_before,
                    "files_after": report.files_after,
                    "data_files_after": ours.files(),
                }
                point["compact_lake"] = lake("compact")
                cl = point["compact_lake"]
                log(
                    f"  compact: ours {t:.1f}s {report.files_before} -> {report.files_after} "
                    f"files; lake {cl['s']:.1f}s (merge {cl['merge_s']:.1f}s) "
                    f"{cl['before']} -> {cl['after']}"
                )
                save()
                point["queries_after_compact"] = measure_queries(
                    ours,
                    lake,
                    args.lake_python,
                    defs_path,
                    work / f"lake-{commits}",
                    args.repeats,
                    log,
                )
                save()
            lake("close")
            shutil.rmtree(work / f"ours-{commits}", ignore_errors=True)
            shutil.rmtree(work / f"lake-{commits}", ignore_errors=True)
        if "writers" in only:
            payload["multi_writer"] = multi_writer(args, data_dir, work, lake, log)
            save()
        if "readers" in only:
            payload["readers"] = readers(lake, work, log)
            save()
    finally:
        lake.close()
        payload["wall_s"] = time.perf_counter() - started
        payload["load_avg_end"] = os.getloadavg()
        save()
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {payload['wall_s']:.0f}s" + (f"; JSON {args.out}" if args.out else ""))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main()
    elif len(sys.argv) > 1 and sys.argv[1] == "--oneshot":
        oneshot_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] in ("--writer", "--our-writer"):
        a = sys.argv[2:8]
        fn = writer_main if sys.argv[1] == "--writer" else our_writer_main
        fn(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--count":
        count_main(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--file-catalog":
        file_catalog_main(sys.argv[2], sys.argv[3])
    else:
        main()
