"""Training data as TRL expects it: conversational prompt/completion and prompt/chosen/rejected.

The same rows are written as Parquet with TRL's column names, so `trl sft` and `trl dpo`
can train on them too (`--dataset_name parquet --data_files …`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from distillery.warehouse.store import Warehouse


def _messages(prompt_json: str) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in json.loads(prompt_json)]


def rsft_rows(wh: Warehouse, sample_ids: list[str]) -> list[dict[str, Any]]:
    """One prompt-completion row per selected sample, in the order given."""
    wanted = pa.table({"sample_id": sample_ids, "ord": list(range(len(sample_ids)))})

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        con.register("wanted", wanted)
        return con.execute(
            "SELECT s.sample_id, p.messages, s.text FROM wanted w JOIN samples s USING (sample_id) "
            "JOIN prompts p USING (prompt_id) ORDER BY w.ord"
        ).fetchall()

    rows = wh.read(read)
    return [
        {
            "sample_id": sid,
            "prompt": _messages(msgs),
            "completion": [{"role": "assistant", "content": text}],
        }
        for sid, msgs, text in rows
    ]


def dpo_rows(wh: Warehouse, pair_ids: list[str]) -> list[dict[str, Any]]:
    wanted = pa.table({"pair_id": pair_ids, "ord": list(range(len(pair_ids)))})

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        con.register("wanted", wanted)
        return con.execute(
            "SELECT pr.pair_id, p.messages, c.text, r.text "
            "FROM wanted w JOIN pairs pr USING (pair_id) "
            "JOIN prompts p ON p.prompt_id = pr.prompt_id "
            "JOIN samples c ON c.sample_id = pr.chosen_id "
            "JOIN samples r ON r.sample_id = pr.rejected_id "
            "ORDER BY w.ord"
        ).fetchall()

    rows = wh.read(read)
    return [
        {
            "pair_id": pid,
            "prompt": _messages(msgs),
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
        for pid, msgs, chosen, rejected in rows
    ]


def write_parquet(rows: list[dict[str, Any]], path: Path) -> Path:
    """The rows with TRL's column names (ids kept for lineage), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)
    return path
