"""Roll-ups (`warehouse/rollup.py`): `prompt_outcomes` from a snapshot plus the delta is the
same, row for row and type for type, as the view computed from every row.

Each case writes a random warehouse, compacts it (which writes the snapshot), then writes
a delta of every kind that can change an answer: new draws, verdicts for covered samples
(a new verifier version, a copy that must lose to the first), copies of covered samples
and verdicts (some written with an earlier time than the covered copy), prompts that
arrive after their samples, and a prompt copy with another family written first.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest

from distillery.warehouse import catalog_duckdb, rollup
from distillery.warehouse.compact import compact
from distillery.warehouse.store import Warehouse
from tests.rollup_world import World, delta_batch, first_batch

QUERIES = (
    "SELECT * FROM prompt_outcomes",
    "SELECT family, avg(pass_at_k(n, c, 1)), sum(n), sum(c) FROM prompt_outcomes GROUP BY 1",
    "SELECT * FROM flips('m0', 'm1')",
)


def result(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[tuple], list[tuple]]:
    """Rows in a fixed order and column types; an average's last bits depend on the order
    DuckDB summed in, so floats are compared to 12 places."""
    rel = con.sql(query)
    rows = [
        tuple(round(v, 12) if isinstance(v, float) else v for v in row) for row in rel.fetchall()
    ]
    return sorted(rows, key=repr), list(zip(rel.columns, map(str, rel.types), strict=True))


def plain(root: Path, query: str) -> tuple[list[tuple], list[tuple]]:
    """`query` over views computed from every row."""
    with duckdb.connect(":memory:") as con:
        catalog_duckdb.define(con, root)
        return result(con, query)


def rolled(root: Path, query: str) -> tuple[list[tuple], list[tuple]]:
    return Warehouse.open_existing(root).read(lambda con: result(con, query))


def stored(root: Path, query: str) -> tuple[list[tuple], list[tuple]]:
    """`query` through `catalog.duckdb` as the DuckDB CLI opens it: no cursor of ours set
    the delta's file list, so its views glob the folders and skip covered files by name."""
    with duckdb.connect(str(root / catalog_duckdb.CATALOG_FILE), read_only=True) as con:
        return result(con, query)


def assert_same(root: Path, catalog: bool = True) -> None:
    for query in QUERIES:
        want = plain(root, query)
        assert rolled(root, query) == want, query
        if catalog:
            assert stored(root, query) == want, query


# The first case in the fast lane, the rest in `make test` (`soak`).
@pytest.mark.parametrize(
    "seed", [0, *(pytest.param(s, marks=pytest.mark.soak) for s in range(1, 4))]
)
def test_rolled_up_outcomes_equal_the_full_computation(tmp_path: Path, seed: int) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(seed)
    first_batch(world, wh)
    report = compact(wh.root, grace_s=0)
    snap = report.rollup
    assert snap is not None and rollup.current(wh.root) == snap
    assert snap.samples == len(world.samples)
    assert snap.verdicts == len(world.verdicts)
    assert_same(wh.root)  # nothing written since: the snapshot alone

    delta_batch(world, wh, "run-3")
    assert_same(wh.root)
    rows = rolled(wh.root, "SELECT count(*) FROM prompt_outcomes")[0]
    assert rows[0][0] > 0

    # A second compaction covers the first delta; a second delta on top of it.
    second = compact(wh.root, grace_s=0).rollup
    assert second is not None and second.id != snap.id
    delta_batch(world, wh, "run-4")
    assert_same(wh.root)

    # Moved: the manifest's paths name nothing here, so every file is read as delta.
    moved = tmp_path / "moved"
    shutil.copytree(wh.root, moved)
    assert_same(moved)


def test_a_cursor_lists_only_the_files_written_since_the_snapshot(tmp_path: Path) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(5)
    first_batch(world, wh)
    compact(wh.root, grace_s=0)
    tables = wh.root.resolve() / "tables"

    def files(table: str) -> set[str]:
        return {str(p) for p in (tables / table).glob("*/*.parquet")}

    before = {table: files(table) for table in rollup.COVERED_TABLES}
    delta_batch(world, wh, "run-3")
    for table in rollup.COVERED_TABLES:
        since = sorted(files(table) - before[table])
        assert since, table
        listed = wh.query(f"SELECT getvariable('{catalog_duckdb.delta_variable(table)}')")[0][0]
        # The schema file first (today's columns, never an empty list), then the delta.
        assert listed == [str(tables / table / "_schema" / "schema.parquet"), *since], table


def test_a_handle_picks_up_a_new_rollup_and_the_catalog_reads_it(tmp_path: Path) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(7)
    first_batch(world, wh)
    before = wh.query("SELECT sum(n) FROM prompt_outcomes")
    snap = compact(wh.root, grace_s=0).rollup
    assert snap is not None
    with wh.connect():
        pass
    assert wh._db is not None and wh._db.snapshot == snap  # the open handle switched
    assert wh.query("SELECT sum(n) FROM prompt_outcomes") == before
    # The stored catalog (what the DuckDB CLI opens) was rewritten to read the snapshot.
    with duckdb.connect(str(wh.catalog_path), read_only=True) as con:
        sql = con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = 'prompt_outcomes'"
        ).fetchone()[0]
        assert rollup.PROMPT_OUTCOMES in sql and snap.id in sql
        assert con.execute("SELECT sum(n) FROM prompt_outcomes").fetchall() == before


def test_an_unreadable_snapshot_is_ignored(tmp_path: Path) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    first_batch(World(3), wh)
    snap = compact(wh.root, grace_s=0).rollup
    assert snap is not None
    (snap.dir / rollup.SAMPLE_KEYS).unlink()
    assert rollup.current(wh.root) is None
    # The stored catalog still names the snapshot until the warehouse is next opened.
    assert_same(wh.root, catalog=False)
    Warehouse.open(wh.root)
    assert_same(wh.root)
    fresh = Warehouse.open_existing(wh.root)
    with fresh.connect():
        assert fresh._db is not None and fresh._db.snapshot is None


def test_stale_snapshots_are_swept_and_the_current_one_kept(tmp_path: Path) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    first_batch(World(5), wh)
    ids = [compact(wh.root, grace_s=0).rollup.id for _ in range(3)]  # type: ignore[union-attr]
    folders = rollup.rollup_dir(wh.root)
    assert sorted(p.name for p in folders.iterdir() if p.is_dir()) == ids  # all kept: recent
    # The first stopped being current when the second was made, two hours ago; the second
    # when the third was made, just now: only the first goes.
    hours_ago = time.time() - 7200
    os.utime(folders / ids[1], (hours_ago, hours_ago))
    assert rollup.sweep(wh.root, ids[2]) == [ids[0]]
    assert sorted(p.name for p in folders.iterdir()) == [*ids[1:], rollup.CURRENT_FILE]
    assert rollup.current(wh.root).id == ids[2]  # type: ignore[union-attr]
