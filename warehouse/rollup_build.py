"""Write a roll-up snapshot of a local warehouse (`rollup.py` says what it holds and why).

Run by `compact` at its end, under the compaction lock, after the merged files replaced
their sources: the snapshot covers the data files listed then. Rows written meanwhile are
in files it does not list, which the view reads as the delta. Everything is written into
a new folder, the manifest last, then `CURRENT` is replaced by rename and the stored
catalog rewritten to read it; a process killed on the way leaves a folder no one reads,
removed with the stale ones by the next build.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import duckdb

from distillery.warehouse import catalog_duckdb, rollup
from distillery.warehouse.tables import PROMPTS, SAMPLES, TABLES, VERDICTS
from distillery.warehouse.writer_parquet import table_dir, table_files

# Lookup files' row groups: a lookup of a few touched ids reads one group per id, and
# DuckDB skips every other group by its min/max (the files are sorted by the key). But a
# fresh reader (each command) first decodes the file's footer and checks every group's
# statistics, which grows with the number of groups: at 10M rows, pass@k took 0.30-0.36 s
# with 4,883 groups of 2,048 rows, 0.17-0.18 s with 8,192 rows, 0.13-0.20 s with 32,768
# (305 groups) and 0.22-0.24 s with 65,536 (reading more rows per id). Measured on the
# history benchmark's 10M warehouse, 16 touched samples, fresh handles (RESULTS.md).
LOOKUP_ROW_GROUP = 32_768
# The stored outcomes are read whole: DuckDB's own row group size, scanned in parallel.
SCAN_ROW_GROUP = 122_880


def _copy(con: duckdb.DuckDBPyConnection, select: str, dest: Path, row_group: int) -> int:
    con.execute(
        f"COPY ({select}) TO {rollup.quote(str(dest))} "
        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group})"
    )
    return con.execute(f"SELECT count(*) FROM read_parquet({rollup.quote(str(dest))})").fetchone()[
        0
    ]


def build(root: Path) -> rollup.Snapshot:
    """A new snapshot of `root`'s prompts, samples and verdicts, made current."""
    root = root.resolve()
    snapshot_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    where = rollup.rollup_dir(root) / snapshot_id
    where.mkdir(parents=True)
    files = {t: table_files(root, t) for t in rollup.COVERED_TABLES}
    source = {
        t: catalog_duckdb.source_sql(TABLES[t], [str(f) for f in files[t]] or None)
        for t in rollup.COVERED_TABLES
    }

    def read(name: str) -> str:
        return f"read_parquet({rollup.quote(str(where / name))})"

    keys, firsts, attrs = (
        read(n) for n in (rollup.SAMPLE_KEYS, rollup.VERDICT_FIRSTS, rollup.PROMPT_ATTRS)
    )
    # No progress bar of DuckDB's own on the terminal: `distillery compact` shows its own.
    with duckdb.connect(":memory:") as con:
        con.execute("SET enable_progress_bar = false")

        def copy(name: str, select: str, row_group: int = LOOKUP_ROW_GROUP) -> int:
            return _copy(con, select, where / name, row_group)

        samples = copy(
            rollup.SAMPLE_KEYS,
            "SELECT DISTINCT sample_id, model_id, prompt_id, "
            "coalesce(procedure, 'sample') AS procedure, temperature, top_p, max_new_tokens "
            f"FROM ({source[SAMPLES]}) ORDER BY sample_id",
        )
        copy(
            rollup.MODEL_SAMPLES,
            f"SELECT model_id, sample_id FROM {keys} ORDER BY model_id, sample_id",
        )
        verdicts = copy(
            rollup.VERDICT_FIRSTS,
            "SELECT sample_id, verifier, verifier_version, min(created_at) AS first_at, "
            f"arg_min(passed, created_at) AS passed FROM ({source[VERDICTS]}) "
            "GROUP BY sample_id, verifier, verifier_version ORDER BY sample_id",
        )
        copy(
            rollup.PROMPT_ATTRS,
            "SELECT prompt_id, a.suite, a.family, a.split, a.verifier, first_at FROM ("
            "SELECT prompt_id, min(created_at) AS first_at, "
            "arg_min(struct_pack(suite, family, split, verifier), created_at) AS a "
            f"FROM ({source[PROMPTS]}) GROUP BY prompt_id) ORDER BY prompt_id",
        )
        con.execute(
            f"""
            CREATE TEMP TABLE outcomes AS
            WITH latest AS (
                SELECT sample_id, arg_max(passed, first_at) AS passed
                FROM {firsts} GROUP BY sample_id
            )
            SELECT d.model_id, d.prompt_id, p.suite, p.family, p.split,
                   d.temperature, d.top_p, d.max_new_tokens,
                   count(*)::BIGINT AS n, sum(l.passed::INT)::BIGINT AS c
            FROM {keys} d
            JOIN latest l USING (sample_id)
            LEFT JOIN {attrs} p USING (prompt_id)
            WHERE l.passed IS NOT NULL AND d.procedure = 'sample'
            GROUP BY ALL
            """
        )
        groups = copy(
            rollup.PROMPT_OUTCOMES,
            "SELECT * FROM outcomes WHERE suite IS NOT NULL ORDER BY prompt_id",
            SCAN_ROW_GROUP,
        )
        groups += copy(
            rollup.ORPHAN_OUTCOMES, "SELECT * FROM outcomes WHERE suite IS NULL ORDER BY prompt_id"
        )
        copy(
            rollup.SAMPLE_GROUPS,
            f"SELECT model_id, prompt_id, count(*) AS n FROM {keys} "
            "GROUP BY ALL ORDER BY prompt_id",
            SCAN_ROW_GROUP,
        )
        copy(
            rollup.VERIFIED_GROUPS,
            "SELECT k.model_id, k.prompt_id, f.verifier, f.verifier_version, count(*) AS n "
            f"FROM {firsts} f JOIN {keys} k USING (sample_id) GROUP BY ALL ORDER BY prompt_id",
            SCAN_ROW_GROUP,
        )
        # Their text too: a verify run reads the pending samples' text, and these are
        # the pending ones the snapshot can answer without reading every sample file.
        bare = copy(
            rollup.BARE_SAMPLES,
            "SELECT sample_id, any_value(model_id) AS model_id, any_value(prompt_id) AS prompt_id, "
            f"any_value(text) AS text FROM ({source[SAMPLES]}) s "
            f"WHERE sample_id NOT IN (SELECT sample_id FROM {firsts}) "
            "GROUP BY sample_id ORDER BY prompt_id",
        )
        # Per verifier kind: how many groups hold samples with a verdict (NULL version), and
        # per version, in how many of those every such sample has one of that version.
        # Verify planning reads this instead of checking every group (`pending_rollup`).
        copy(
            rollup.COMPLETE_VERSIONS,
            f"""
            WITH g AS (
                SELECT sg.model_id, sg.prompt_id, sg.n - coalesce(b.n, 0) AS verified,
                       json_extract_string(a.verifier, '$.kind') AS kind
                FROM {read(rollup.SAMPLE_GROUPS)} sg
                JOIN {attrs} a USING (prompt_id)
                LEFT JOIN (SELECT model_id, prompt_id, count(*) AS n
                           FROM {read(rollup.BARE_SAMPLES)} GROUP BY ALL) b
                  USING (model_id, prompt_id)
                WHERE sg.n > coalesce(b.n, 0)
            )
            SELECT kind AS verifier, NULL::VARCHAR AS verifier_version, count(*) AS groups
            FROM g GROUP BY kind
            UNION ALL
            SELECT g.kind, v.verifier_version, count(*)
            FROM g JOIN {read(rollup.VERIFIED_GROUPS)} v
              ON v.model_id = g.model_id AND v.prompt_id = g.prompt_id AND v.verifier = g.kind
            WHERE v.n = g.verified
            GROUP BY ALL
            """,
        )
    base = {t: table_dir(root, t) for t in rollup.COVERED_TABLES}
    manifest = {
        "version": rollup.VERSION,
        "covered": {t: [str(f.relative_to(base[t])) for f in files[t]] for t in files},
        "samples": samples,
        "verdicts": verdicts,
        "groups": groups,
        "bare": bare,
    }
    (where / rollup.MANIFEST_FILE).write_text(json.dumps(manifest))
    _point_at(root, snapshot_id)
    catalog_duckdb.write_catalog(root)
    rollup.sweep(root, snapshot_id)
    snapshot = rollup.load(root, snapshot_id)
    assert snapshot is not None  # just written, complete
    return snapshot


def _point_at(root: Path, snapshot_id: str) -> None:
    pointer = rollup.rollup_dir(root) / rollup.CURRENT_FILE
    tmp = pointer.with_name(f"{rollup.CURRENT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(snapshot_id + "\n")
    os.replace(tmp, pointer)
