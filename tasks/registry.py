"""Suite names and files → prompts: the one place that knows every source of prompts."""

from __future__ import annotations

from pathlib import Path

from distillery.tasks.base import TaskPrompt
from distillery.tasks.suite_file import SUFFIXES, TaskError, load_file

BUILTIN = ("seeds", "humaneval")


def load_suite(source: str, suite: str | None = None) -> tuple[str, list[TaskPrompt]]:
    if source == "seeds":
        from distillery.tasks.suite_seeds import SeedsSuite

        return "seeds", SeedsSuite().prompts()
    if source == "humaneval":
        from distillery.tasks.suite_humaneval import HumanEvalSuite

        return "humaneval", HumanEvalSuite().prompts()
    path = Path(source)
    if path.suffix in SUFFIXES:
        return load_file(path, suite)
    raise TaskError(
        f"unknown suite {source!r}; use one of {', '.join(BUILTIN)} or a .jsonl/.parquet file"
    )
