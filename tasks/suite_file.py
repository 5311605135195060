"""User suites from a JSONL or Parquet file; the columns are documented in README.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distillery.filters.spec import SpecError, validate_spec
from distillery.tasks.base import SPLITS, TRAIN, TaskPrompt
from distillery.warehouse.ids import canonical_json

SUFFIXES = (".jsonl", ".parquet")


class TaskError(ValueError):
    """A suite that cannot be loaded; the message names the file, line and fix."""


def _row_prompt(suite: str, row: Any, where: str) -> TaskPrompt:
    if not isinstance(row, dict):
        raise TaskError(f"{where}: each row must be a JSON object")
    messages = row.get("messages")
    prompt = row.get("prompt")
    if (messages is None) == (prompt is None):
        raise TaskError(f"{where}: give exactly one of 'prompt' (text) or 'messages' (list)")
    verifier = row.get("verifier")
    if isinstance(verifier, str):
        try:
            verifier = json.loads(verifier)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{where}: 'verifier' is not valid JSON ({exc.msg})") from None
    if verifier is None:
        raise TaskError(f"{where}: missing 'verifier' (see README, 'Verifier specs')")
    split = row.get("split") or TRAIN
    if split not in SPLITS:
        raise TaskError(f"{where}: 'split' must be one of {', '.join(SPLITS)} (got {split!r})")
    family = str(row.get("family") or "default")
    reference = row.get("reference")
    reference = None if reference is None else str(reference)
    try:
        validate_spec(verifier, where)
    except SpecError as exc:
        raise TaskError(str(exc)) from None
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskError(f"{where}: 'prompt' must be non-empty text")
        pairs = [("user", prompt)]
        system = row.get("system")
        if system:
            pairs.insert(0, ("system", str(system)))
    else:
        if not isinstance(messages, list) or not messages:
            raise TaskError(f"{where}: 'messages' must be a non-empty list")
        pairs = []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise TaskError(f"{where}: each message needs 'role' and 'content' text")
            if m.get("role") not in ("system", "user", "assistant"):
                raise TaskError(f"{where}: message role must be system, user or assistant")
            pairs.append((m["role"], m["content"]))
    return TaskPrompt(suite, family, split, tuple(pairs), canonical_json(verifier), reference)


def _rows(path: Path) -> list[tuple[str, Any]]:
    if path.suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8", errors="strict") as fh:
            try:
                for n, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rows.append((f"{path}:{n}", json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise TaskError(
                            f"{path}:{n}: malformed JSON ({exc.msg}); fix or remove the line"
                        ) from None
            except UnicodeDecodeError:
                raise TaskError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
        return rows
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise TaskError(f"{path}: cannot read as Parquet ({exc})") from None
    return [(f"{path}:row {i + 1}", r) for i, r in enumerate(table.to_pylist())]


def load_file(path: Path, suite: str | None = None) -> tuple[str, list[TaskPrompt]]:
    """(suite name, prompts) from a user file; nothing is returned unless every row is valid."""
    if path.suffix not in SUFFIXES:
        raise TaskError(f"{path}: unsupported file type; use .jsonl or .parquet")
    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    name = suite or path.stem
    prompts = [_row_prompt(name, row, where) for where, row in _rows(path)]
    if not prompts:
        raise TaskError(f"{path}: no rows; a suite needs at least one prompt")
    return name, prompts
