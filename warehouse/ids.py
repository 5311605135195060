"""Content-hashed ids: the same work always gets the same id, so reruns dedup instead of lock."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

# 96 bits: a birthday collision needs ~2^48 rows, far beyond any warehouse we expect.
_HEX_CHARS = 24


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# A string as canonical_json writes it inside a list (UTF-8 kept, no whitespace): for ids
# built from the JSON of their constant parts (`id_of_canonical`).
json_str = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def content_id(prefix: str, *parts: Any) -> str:
    """`prefix-<hex>` over the canonical JSON of `parts`."""
    return id_of_canonical(prefix, canonical_json(list(parts)))


def id_of_canonical(prefix: str, canonical: str) -> str:
    """`content_id` of parts whose canonical JSON the caller built itself (a hot path that
    reuses the JSON of its constant parts)."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:_HEX_CHARS]}"


def id_sql(prefix: str, canonical: str) -> str:
    """The DuckDB expression computing `id_of_canonical(prefix, <canonical>)` for a SQL
    string expression `canonical`: the same ids, made where the rows are (a million in a
    fraction of a second) instead of one at a time in Python."""
    if not prefix.isalnum():
        raise ValueError(f"an id prefix is alphanumeric (got {prefix!r})")
    return f"('{prefix}-' || sha256({canonical})[1:{_HEX_CHARS}])"


def event_id(prefix: str) -> str:
    """A fresh id for things that happen once (a run), not for content."""
    return f"{prefix}-{uuid.uuid4().hex[:_HEX_CHARS]}"
