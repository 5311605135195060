"""Verify planning from a roll-up: what has no verdict yet, without reading every sample.

`select_pending` asks two things of the samples in scope: how many there are per verifier
spec, and which lack a verdict of their verifier's current version. Read from the files,
both cost a pass over every sample and verdict id. A roll-up snapshot (`warehouse/rollup.py`)
answers them for the samples it covers from per-(model, prompt) counts:

- samples per spec: the covered groups' counts, plus the samples written since that the
  snapshot does not hold (looked up by id in its sorted keys);
- pending: a covered sample lacks a current verdict when it has none at all (the
  snapshot lists those, text included) unless one was written since, and the files
  written since give the rest.

That is exact only while every covered sample that lacks a current verdict has no verdict
at all. The snapshot says per verifier kind whether every group's verified samples have
the current version; if not, the groups in scope are checked. When a group has more
samples lacking one than bare ones (a new verifier version, whose re-verification is
real work over the history), or a prompt the snapshot covers has a new copy (its split
may differ), `read` returns None and the caller reads the files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from distillery.warehouse import rollup
from distillery.warehouse.catalog_duckdb import delta_sql
from distillery.warehouse.tables import PROMPTS, SAMPLES, VERDICTS

Register = Callable[[duckdb.DuckDBPyConnection, list[tuple[Any, ...]]], None]


def read(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    snapshot: rollup.Snapshot,
    scope: str,
    params: list[Any],
    register: Register,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
    """(samples per spec, pending rows) as `select_pending` reads them from the files, or
    None where the snapshot cannot answer exactly. `scope` filters on `s` (the sample or
    group: sample_id, model_id), `p` (its prompt) and `m` (its model); `register`
    validates the specs and registers their current versions as `current`."""
    d_prompts, d_samples, d_verdicts = (
        delta_sql(root, t, snapshot) for t in (PROMPTS, SAMPLES, VERDICTS)
    )
    attrs = snapshot.read(rollup.PROMPT_ATTRS)
    recopied, fresh = con.execute(
        f"SELECT count(a.prompt_id), count(*) - count(a.prompt_id) "
        f"FROM (SELECT DISTINCT prompt_id FROM ({d_prompts})) d "
        f"LEFT JOIN {attrs} a USING (prompt_id)"
    ).fetchone()
    if recopied:
        return None
    # Prompts now: the covered ones, plus the first copy of each prompt written since.
    prompts = (
        f"(SELECT prompt_id, suite, family, split, verifier FROM {attrs} UNION ALL "
        "SELECT prompt_id, a.suite, a.family, a.split, a.verifier FROM ("
        "SELECT prompt_id, arg_min(struct_pack(suite, family, split, verifier), created_at) AS a "
        f"FROM ({d_prompts}) GROUP BY prompt_id))"
    )

    def scoped(source: str, columns: str) -> str:
        return (
            f"SELECT {columns}, p.family, p.verifier AS spec FROM {source} s "
            f"JOIN {prompts} p USING (prompt_id) LEFT JOIN models m USING (model_id) "
            f"WHERE true{scope}"
        )

    groups = scoped(snapshot.read(rollup.SAMPLE_GROUPS), "s.model_id, s.prompt_id, s.n")
    recent = scoped(f"({d_samples})", "s.sample_id, s.text")
    bare = scoped(snapshot.read(rollup.BARE_SAMPLES), "s.sample_id, s.text")
    keys = snapshot.read(rollup.SAMPLE_KEYS)
    counts = con.execute(
        f"""
        WITH recent AS ({recent}),
        -- The snapshot's keys probed with the few recent ids: row groups skipped by min/max.
        known AS (SELECT sample_id FROM {keys} SEMI JOIN recent USING (sample_id))
        SELECT spec, sum(n)::BIGINT FROM (
            SELECT spec, n FROM ({groups})
            UNION ALL
            SELECT spec, count(DISTINCT sample_id) AS n FROM recent
            WHERE sample_id NOT IN (SELECT sample_id FROM known) GROUP BY spec
        ) GROUP BY spec
        """,
        params + params,
    ).fetchall()
    register(con, counts)
    # Whether some covered sample lacks a current verdict yet has some other verdict. When
    # every group of each current kind has its verified samples all at the current
    # version, no scope can hold one. Else (or a new prompt may adopt samples the snapshot
    # holds without a prompt), the groups in scope are checked one by one.
    (short,) = con.execute(
        f"""
        SELECT count(*) FROM current c
        LEFT JOIN {snapshot.read(rollup.COMPLETE_VERSIONS)} t
          ON t.verifier = c.verifier AND t.verifier_version IS NULL
        LEFT JOIN {snapshot.read(rollup.COMPLETE_VERSIONS)} v
          ON v.verifier = c.verifier AND v.verifier_version = c.verifier_version
        WHERE coalesce(t.groups, 0) > coalesce(v.groups, 0)
        """
    ).fetchone()
    if (short or fresh) and _beyond_bare(con, snapshot, groups, params):
        return None

    rows = con.execute(
        f"""
        WITH candidates AS (
            SELECT sample_id, family, spec, text FROM ({bare})
            UNION ALL SELECT sample_id, family, spec, text FROM ({recent})
        ), have AS (
            SELECT sample_id, verifier, verifier_version
            FROM {snapshot.read(rollup.VERDICT_FIRSTS)} SEMI JOIN candidates USING (sample_id)
            UNION ALL SELECT sample_id, verifier, verifier_version FROM ({d_verdicts})
        )
        SELECT sc.sample_id, sc.family, sc.spec, sc.text FROM candidates sc
        JOIN current c USING (spec)
        ANTI JOIN have v ON v.sample_id = sc.sample_id AND v.verifier = c.verifier
                        AND v.verifier_version = c.verifier_version
        ORDER BY sc.sample_id
        """,
        params + params,
    ).fetchall()
    return counts, rows


def _beyond_bare(
    con: duckdb.DuckDBPyConnection, snapshot: rollup.Snapshot, groups: str, params: list[Any]
) -> bool:
    """Whether a group in scope has more covered samples lacking a current verdict than
    samples with no verdict at all (so some have a verdict of another version only)."""
    (count,) = con.execute(
        f"""
        SELECT count(*) FROM ({groups}) g JOIN current c USING (spec)
        LEFT JOIN {snapshot.read(rollup.VERIFIED_GROUPS)} v
          ON v.model_id = g.model_id AND v.prompt_id = g.prompt_id
         AND v.verifier = c.verifier AND v.verifier_version = c.verifier_version
        LEFT JOIN (SELECT model_id, prompt_id, count(*) AS n
                   FROM {snapshot.read(rollup.BARE_SAMPLES)} GROUP BY ALL) b
          ON b.model_id = g.model_id AND b.prompt_id = g.prompt_id
        WHERE g.n - coalesce(v.n, 0) > coalesce(b.n, 0)
        """,
        params,
    ).fetchone()
    return count > 0
