"""Roll-ups: `prompt_outcomes` answered from a stored aggregate plus the rows written since.

`prompt_outcomes` (per model, prompt and sampling parameters: verified draws n, passed c)
is what pass@k, flips and every report read. Computed from the rows, it joins every sample
with every verdict: its cost grows with the warehouse's history. A compaction
(`distillery compact`, `rollup_build.py`) therefore stores a snapshot of the answer and of
the keys needed to correct it, under `rollups/<id>/`:

- `prompt_outcomes.parquet`: the view's rows as of the snapshot, sorted by prompt;
  `orphan_outcomes.parquet`: the same for drawn samples whose prompt had no row yet (kept
  apart, and always summed again, so that the view knows them to be few);
- `sample_keys.parquet`: each sample's key columns and procedure, sorted by `sample_id`
  (a lookup of a few ids reads a few row groups);
- `model_samples.parquet`: (model_id, sample_id), sorted so, for sample planning (the ids
  of one model are a few row groups);
- `verdict_firsts.parquet`: the first verdict per (sample, verifier, version), sorted by
  `sample_id`;
- `prompt_attrs.parquet`: each prompt's suite, family, split and verifier spec from its
  first copy;
- for verify planning (`filters/verification.py`): `sample_groups.parquet` (samples per
  model and prompt), `verified_groups.parquet` (of those, how many have a verdict of each
  verifier version), `bare_samples.parquet` (the samples with no verdict at all, with
  their text) and `complete_versions.parquet` (per verifier kind, the groups with verdicts,
  and per version the groups where every verified sample has one of that version);
- `manifest.json`: the data files (per table, relative to the table's folder) it covers.

The view then reads the roll-up and only the files the manifest does not list (the delta).
The samples that delta rows touch are looked up in the sorted key files (DuckDB skips
every row group whose min/max cannot hold them), their old contribution is taken out of
their groups and the new one put in, and the groups of prompts the delta touches are
summed again. Every other group is read as stored.

Exact whatever the delta holds: a delta row that repeats a covered row (a copy, a file a
later compaction merged into a new name, a warehouse moved so the manifest's paths no
longer match) is deduplicated against the snapshot like any other copy, so the manifest
only decides how much is read, never the answer. Rows are never removed from a warehouse,
so what a snapshot covers stays true.

`CURRENT` names the snapshot in use, replaced by rename. A snapshot stays on disk
`KEEP_S` after it stopped being current, so that a reader whose views were defined
against it (a long-lived handle, a DuckDB CLI with the previous `catalog.duckdb` open)
keeps working; `Warehouse.connect` picks up a new snapshot on its next query.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from distillery.warehouse.tables import PROMPTS, SAMPLES, VERDICTS

ROLLUP_DIR = "rollups"
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
# Bumped when the files or their meaning change: a snapshot of another version is ignored
# (the view is computed from the rows) until the next compaction writes a new one.
VERSION = 1
KEEP_S = 3600.0
# The tables whose rows a snapshot summarizes.
COVERED_TABLES = (PROMPTS, SAMPLES, VERDICTS)

SAMPLE_KEYS = "sample_keys.parquet"
MODEL_SAMPLES = "model_samples.parquet"
VERDICT_FIRSTS = "verdict_firsts.parquet"
PROMPT_ATTRS = "prompt_attrs.parquet"
PROMPT_OUTCOMES = "prompt_outcomes.parquet"
ORPHAN_OUTCOMES = "orphan_outcomes.parquet"
SAMPLE_GROUPS = "sample_groups.parquet"
VERIFIED_GROUPS = "verified_groups.parquet"
BARE_SAMPLES = "bare_samples.parquet"
COMPLETE_VERSIONS = "complete_versions.parquet"
FILES = (
    SAMPLE_KEYS,
    MODEL_SAMPLES,
    VERDICT_FIRSTS,
    PROMPT_ATTRS,
    PROMPT_OUTCOMES,
    ORPHAN_OUTCOMES,
    SAMPLE_GROUPS,
    VERIFIED_GROUPS,
    BARE_SAMPLES,
    COMPLETE_VERSIONS,
)


@dataclass(frozen=True)
class Snapshot:
    id: str
    dir: Path
    covered: dict[str, tuple[str, ...]]  # table -> data files, relative to its folder
    samples: int  # samples summarized
    verdicts: int  # first verdicts summarized
    groups: int  # rows of prompt_outcomes stored
    bare: int  # samples without any verdict

    def file(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> str:
        """SQL reading one of the snapshot's files."""
        return f"read_parquet({quote(str(self.file(name)))})"


def describe(snapshot: Snapshot) -> str:
    """One line for `distillery compact` and the compact flow's artifact."""
    return (
        f"roll-up: {snapshot.samples:,} samples ({snapshot.bare:,} unverified), "
        f"{snapshot.groups:,} prompt outcomes"
    )


def rollup_dir(root: Path) -> Path:
    return root / ROLLUP_DIR


def current_id(root: Path) -> str | None:
    """The id `CURRENT` names (one small read: every query's handle checks it)."""
    try:
        return (rollup_dir(root) / CURRENT_FILE).read_text().strip() or None
    except OSError:
        return None


def load(root: Path, snapshot_id: str | None) -> Snapshot | None:
    """The snapshot `snapshot_id` if it is complete and of this version, else None."""
    if snapshot_id is None:
        return None
    where = rollup_dir(root) / snapshot_id
    try:
        manifest = json.loads((where / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != VERSION:
        return None
    if not all((where / name).is_file() for name in FILES):
        return None
    return Snapshot(
        id=snapshot_id,
        dir=where,
        covered={t: tuple(manifest["covered"].get(t, ())) for t in COVERED_TABLES},
        samples=int(manifest["samples"]),
        verdicts=int(manifest["verdicts"]),
        groups=int(manifest["groups"]),
        bare=int(manifest["bare"]),
    )


def current(root: Path) -> Snapshot | None:
    return load(root, current_id(root))


def sweep(root: Path, keep: str, keep_s: float = KEEP_S) -> list[str]:
    """Remove the snapshots older than `keep` that stopped being current over `keep_s`
    ago: each stopped when the next one was made (a folder's time is when its last file,
    the manifest, was written). A folder a killed build left is swept the same way.
    Returns the ids removed."""
    where = rollup_dir(root)
    folders = sorted(p for p in where.iterdir() if p.is_dir() and p.name <= keep)
    removed = []
    for older, newer in pairwise(folders):
        try:
            replaced_at = newer.stat().st_mtime
        except OSError:
            continue
        if time.time() - replaced_at > keep_s:
            shutil.rmtree(older, ignore_errors=True)
            removed.append(older.name)
    return removed


def quote(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def view_sql(snapshot: Snapshot, delta: dict[str, str]) -> str:
    """`prompt_outcomes` from `snapshot` and the delta sources (`delta[table]`: a SELECT of
    that table's rows in files the snapshot does not cover, under today's column names).

    The same definitions as `queries.PROMPT_OUTCOMES`, applied to the touched samples: a
    drawn sample is a (sample_id, model, prompt, parameters) row of procedure `sample`;
    its verdict per (verifier, version) is the first written, and its latest verdict the
    one of those first written last. Its prompt's attributes come from the prompt's first
    copy. Column names and types are the plain view's.
    """
    keys, firsts, attrs, stored, orphans = (
        snapshot.read(name)
        for name in (SAMPLE_KEYS, VERDICT_FIRSTS, PROMPT_ATTRS, PROMPT_OUTCOMES, ORPHAN_OUTCOMES)
    )
    return f"""
CREATE OR REPLACE VIEW prompt_outcomes AS
WITH d_drawn AS (
    SELECT DISTINCT sample_id, model_id, prompt_id, temperature, top_p, max_new_tokens
    FROM ({delta[SAMPLES]}) WHERE coalesce(procedure, 'sample') = 'sample'
), d_firsts AS (
    SELECT sample_id, verifier, verifier_version, min(created_at) AS first_at,
           arg_min(passed, created_at) AS passed
    FROM ({delta[VERDICTS]}) GROUP BY sample_id, verifier, verifier_version
), touched AS (
    SELECT sample_id FROM d_drawn UNION SELECT sample_id FROM d_firsts
), b_drawn AS (
    SELECT sample_id, model_id, prompt_id, temperature, top_p, max_new_tokens
    FROM {keys} SEMI JOIN touched USING (sample_id) WHERE procedure = 'sample'
), b_firsts AS (
    SELECT * FROM {firsts} SEMI JOIN touched USING (sample_id)
), b_latest AS (
    SELECT sample_id, arg_max(passed, first_at) AS passed FROM b_firsts GROUP BY sample_id
), all_firsts AS (
    SELECT sample_id, verifier, verifier_version, min(first_at) AS first_at,
           arg_min(passed, first_at) AS passed
    FROM (SELECT * FROM b_firsts UNION ALL BY NAME SELECT * FROM d_firsts)
    GROUP BY sample_id, verifier, verifier_version
), latest AS (
    SELECT sample_id, arg_max(passed, first_at) AS passed FROM all_firsts GROUP BY sample_id
), changes AS (
    SELECT model_id, prompt_id, temperature, top_p, max_new_tokens,
           -1 AS n, -(l.passed::INT) AS c
    FROM b_drawn JOIN b_latest l USING (sample_id) WHERE l.passed IS NOT NULL
    UNION ALL
    SELECT model_id, prompt_id, temperature, top_p, max_new_tokens,
           1 AS n, l.passed::INT AS c
    FROM (SELECT * FROM b_drawn UNION SELECT * FROM d_drawn) JOIN latest l USING (sample_id)
    WHERE l.passed IS NOT NULL
), d_prompts AS (
    SELECT prompt_id, suite, family, split, created_at AS first_at FROM ({delta[PROMPTS]})
), changed AS (
    SELECT prompt_id FROM changes
    UNION SELECT prompt_id FROM d_prompts
    UNION SELECT prompt_id FROM {orphans}
), attrs AS (
    SELECT prompt_id, arg_min(struct_pack(suite, family, split), first_at) AS a
    FROM (SELECT prompt_id, suite, family, split, first_at
          FROM {attrs} SEMI JOIN changed USING (prompt_id)
          UNION ALL BY NAME SELECT * FROM d_prompts)
    GROUP BY prompt_id
), regrouped AS (
    SELECT model_id, prompt_id, temperature, top_p, max_new_tokens, sum(n) AS n, sum(c) AS c
    FROM (SELECT model_id, prompt_id, temperature, top_p, max_new_tokens, n, c
          FROM {stored} WHERE prompt_id IN (SELECT prompt_id FROM changed)
          UNION ALL SELECT model_id, prompt_id, temperature, top_p, max_new_tokens, n, c
          FROM {orphans}
          UNION ALL SELECT * FROM changes)
    GROUP BY ALL HAVING sum(n) > 0
)
SELECT s.model_id, m.name AS model, s.prompt_id, s.suite, s.family, s.split,
       s.temperature, s.top_p, s.max_new_tokens, s.n::BIGINT AS n, s.c::HUGEINT AS c
FROM {stored} s LEFT JOIN models m USING (model_id)
WHERE s.prompt_id NOT IN (SELECT prompt_id FROM changed)
UNION ALL
SELECT g.model_id, m.name AS model, g.prompt_id, t.a.suite, t.a.family, t.a.split,
       g.temperature, g.top_p, g.max_new_tokens, g.n::BIGINT AS n, g.c::HUGEINT AS c
FROM regrouped g JOIN attrs t USING (prompt_id) LEFT JOIN models m USING (model_id)
"""


def covered_paths(snapshot: Snapshot, table_folder: Path, table: str) -> Sequence[str]:
    """The absolute paths of the files `snapshot` covers in `table`, as a glob under
    `table_folder` names them."""
    return [str(table_folder / rel) for rel in snapshot.covered.get(table, ())]
