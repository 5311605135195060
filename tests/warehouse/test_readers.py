"""The warehouse folder opens with every common tool: pandas, polars, pyarrow.dataset,
Hugging Face `datasets`, DuckDB from Python and the DuckDB CLI (an older release than the
`duckdb` package, from the `duckdb-cli` wheel). Each reads a table's folder as it is, with
the exact rows written and `run_id` as a plain string column (no partition column inferred
from the folder names beside it)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from distillery.warehouse.records import (
    ModelRecord,
    PromptRecord,
    SampleRecord,
    SelectionRecord,
    VerdictRecord,
)
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse
from distillery.warehouse.tables import TABLES

# Rows per run as written; `runs` has a start and an end row per run (the view keeps one).
SAMPLES = (3, 2)


def _sample(run_id: str, prompt_id: str, idx: int) -> SampleRecord:
    return SampleRecord(
        f"smp-{run_id}-{idx}", prompt_id, "mdl-1", run_id, "test", idx, idx, 0.8, 0.95, 8,
        "x", 1, 2, "stop", 0.1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Two runs written by the project's writer; the catalog is made before any row."""
    wh = Warehouse.open(tmp_path_factory.mktemp("readers") / "wh")
    expected: dict[str, int] = {}
    for n in SAMPLES:
        with recorded_run(wh, "test", {"n": n}) as run_id:
            prompts = [
                PromptRecord(f"p{i}", "s", "fam", "test", "[]", "{}", None, run_id)
                for i in range(2)
            ]
            samples = [_sample(run_id, f"p{i % 2}", i) for i in range(n)]
            verdicts = [
                VerdictRecord(s.sample_id, "answer", "1", s.idx == 0, None, "ok", "", 0.1, run_id)
                for s in samples
            ]
            model = ModelRecord("mdl-1", "m", "m", "alias", None, None, None, True, False, run_id)
            ids = [s.sample_id for s in samples]
            selection = SelectionRecord(f"sel-{run_id}", "s", "mdl-1", None, "all", 1, None,
                                        ids, 2, 0, run_id)  # fmt: skip
            wh.write([*prompts, model, *samples, *verdicts, selection])
            expected[run_id] = n
    return wh.root, expected


def _check(rows: int, run_ids: list[str], expected: dict[str, int]) -> None:
    assert rows == sum(expected.values())
    assert all(isinstance(r, str) for r in run_ids)
    assert Counter(run_ids) == expected


def test_pandas_reads_a_table_folder(warehouse):
    pd = pytest.importorskip("pandas")
    root, expected = warehouse
    df = pd.read_parquet(root / "tables" / "samples")
    assert pd.api.types.is_string_dtype(df["run_id"])
    assert not isinstance(df["run_id"].dtype, pd.CategoricalDtype)
    _check(len(df), df["run_id"].tolist(), expected)
    runs = pd.read_parquet(root / "tables" / "runs")
    assert len(runs) == 2 * len(expected)  # every row as written: start and end
    selections = pd.read_parquet(root / "tables" / "selections")
    assert sorted(len(ids) for ids in selections["sample_ids"]) == sorted(SAMPLES)


def test_polars_scans_a_table_folder_and_a_glob(warehouse):
    pl = pytest.importorskip("polars")
    root, expected = warehouse
    for source in (root / "tables" / "samples", root / "tables" / "samples" / "*" / "*.parquet"):
        df = pl.scan_parquet(source).collect()
        assert df.schema["run_id"] == pl.String
        _check(df.height, df["run_id"].to_list(), expected)
    assert pl.scan_parquet(root / "tables" / "runs").collect().height == 2 * len(expected)


def test_pyarrow_dataset_reads_a_table_folder(warehouse):
    root, expected = warehouse
    # Plain, and with hive partitioning as pandas asks for it: no folder is a key=value.
    for partitioning in (None, "hive"):
        table = ds.dataset(root / "tables" / "samples", partitioning=partitioning).to_table()
        assert table.schema.field("run_id").type == pa.string()
        assert table.schema.names == TABLES["samples"].schema.names
        _check(table.num_rows, table.column("run_id").to_pylist(), expected)


def test_datasets_loads_a_table_folder_and_its_files(warehouse, tmp_path):
    datasets = pytest.importorskip("datasets")
    root, expected = warehouse
    folder = root / "tables" / "samples"
    for source in ({"data_dir": str(folder)}, {"data_files": str(folder / "*" / "*.parquet")}):
        loaded = datasets.load_dataset(
            "parquet", **source, split="train", cache_dir=str(tmp_path / "hf")
        )
        assert loaded.features["run_id"] == datasets.Value("string")
        _check(loaded.num_rows, loaded["run_id"], expected)


def test_duckdb_python_reads_the_catalog_and_the_files(warehouse):
    root, expected = warehouse
    with duckdb.connect(str(root / "catalog.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT run_id, typeof(run_id) FROM samples").fetchall()
        _check(len(rows), [r for r, _ in rows], expected)
        assert {t for _, t in rows} == {"VARCHAR"}
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (len(expected),)
        glob = str(root / "tables" / "samples" / "*" / "*.parquet")
        rows = con.execute(f"SELECT run_id FROM read_parquet('{glob}')").fetchall()
        _check(len(rows), [r for (r,) in rows], expected)


def _duckdb_cli() -> str:
    # The `duckdb-cli` wheel installs the binary beside this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which("duckdb", path=path)
    if found is None:
        pytest.skip("no DuckDB CLI: pip install duckdb-cli")
    return found


def _cli(database: Path, sql: str) -> list[list[str]]:
    proc = subprocess.run(
        [_duckdb_cli(), "-readonly", "-csv", str(database), sql],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return list(csv.reader(io.StringIO(proc.stdout)))


def test_duckdb_cli_opens_the_catalog_and_binds_every_view(warehouse):
    root, expected = warehouse
    catalog = root / "catalog.duckdb"
    # The README's command, as it is.
    rows = _cli(catalog, "SELECT * FROM runs")
    assert len(rows) == 1 + len(expected) and "run_id" in rows[0]
    # Every table view, the canned views and both macros bind in this (older) DuckDB;
    # the catalog was written before any row, so its views read files written since.
    counts = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in TABLES)
    got = dict(_cli(catalog, counts)[1:])
    assert got == {
        name: str(
            {
                "samples": sum(SAMPLES),
                "verdicts": sum(SAMPLES),
                "runs": len(expected),
                "selections": len(expected),
                "prompts": 2,
                "models": 1,
            }.get(name, 0)
        )
        for name in TABLES
    }
    rows = _cli(catalog, "SELECT run_id, typeof(run_id) FROM samples")[1:]
    _check(len(rows), [r for r, _ in rows], expected)
    assert {t for _, t in rows} == {"VARCHAR"}
    (_, outcome) = _cli(catalog, "SELECT count(*), count(passed) FROM sample_outcomes")
    assert outcome == [str(sum(SAMPLES))] * 2
    (_, per_prompt) = _cli(
        catalog, "SELECT sum(n), sum(c), round(avg(pass_at_k(n, c, 1)), 6) FROM prompt_outcomes"
    )
    assert per_prompt[:2] == [str(sum(SAMPLES)), str(len(SAMPLES))]
    (_, flips) = _cli(
        catalog, "SELECT count(*), count(*) FILTER (flip = 'same') FROM flips('m', 'm')"
    )
    assert flips == ["2", "2"]
    # The files alone, without the catalog: no hive partition is inferred.
    glob = root / "tables" / "samples" / "*" / "*.parquet"
    rows = _cli(catalog, f"SELECT run_id, typeof(run_id) FROM '{glob}'")[1:]
    _check(len(rows), [r for r, _ in rows], expected)
