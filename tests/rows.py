"""Read results in a test through the warehouse API, not a `distillery sql` process.

What `distillery sql --format json QUERY` prints, as dicts, for the end-to-end tests that
check rows after a command (the `sql` command itself is tested in tests/flows/test_cli.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillery.warehouse.store import Warehouse


def query_rows(wh: Path, query: str) -> list[dict[str, Any]]:
    with Warehouse.open_existing(wh).connect() as con:
        cur = con.execute(query)
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
