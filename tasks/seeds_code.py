"""Seed family `code`: write one small Python function that must pass hidden unit tests.

From the seeds' codegen examples (`is_palindrome`, `int_to_roman`, `factorial`,
`slugify`): best-of-N with unit tests finds a passing solution far more often than one
sample does, which is exactly the gap training on verified samples should close.

The tasks are data, one file per task in `tasks/data/code/`, named `<NN>_<name>.json`;
the number fixes the order of TASKS (and so of the prompts). Each file holds:

- `name`: the entry point the tests call; `signature` and `behaviour`: the prompt text;
- `solution`: a reference solution, one string per line, that is a self-contained module
  (imports inside), so it can be exec'd alone and also serve as the prompt's reference;
- `cases`: hand-written tests, `{"args": [...], "expected": ...}` or
  `{"args": [...], "raises": "ValueError"}`, in plain JSON (2.0 and 2 stay distinct);
- optionally `note`: why the cases are what they are (not used by the code).

The tests run every reference against its own cases, so a wrong expected value is caught
there rather than charged to the model. The split is by function name, so a function seen
in training is never used to measure generalisation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from distillery.tasks.base import TaskPrompt, split_for

FAMILY = "code"

_FILE = re.compile(r"(\d+)_(\w+)\.json")
_KEYS = {"name", "signature", "behaviour", "solution", "cases"}
_OPTIONAL_KEYS = {"note"}


@dataclass(frozen=True)
class CodeTask:
    name: str  # the entry point the tests call
    signature: str
    behaviour: str
    cases: tuple[dict[str, Any], ...]

    @property
    def user_text(self) -> str:
        return f"Write a Python function `{self.signature}`. {self.behaviour} Output code only."

    @property
    def spec(self) -> dict[str, Any]:
        return {"kind": "code_tests", "entry_point": self.name, "cases": list(self.cases)}


def _load() -> tuple[tuple[CodeTask, ...], dict[str, str]]:
    """Every task file, in file-number order, with its reference solution by name."""
    files = []
    for entry in (resources.files("distillery.tasks") / "data" / "code").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            raise ValueError(f"seed code task file {entry.name!r} is not <NN>_<name>.json")
        files.append((int(match[1]), match[2], entry))
    numbers = [number for number, _, _ in files]
    if len(set(numbers)) != len(numbers):
        raise ValueError("two seed code task files share a number; the order would be unclear")
    tasks: list[CodeTask] = []
    solutions: dict[str, str] = {}
    for _, stem, entry in sorted(files, key=lambda file: file[0]):
        data = json.loads(entry.read_text(encoding="utf-8"))
        if not _KEYS <= data.keys() <= _KEYS | _OPTIONAL_KEYS or data["name"] != stem:
            raise ValueError(f"{entry.name}: want keys {sorted(_KEYS)} and name {stem!r}")
        if data["name"] in solutions:
            raise ValueError(f"{entry.name}: a second task named {data['name']!r}")
        tasks.append(
            CodeTask(data["name"], data["signature"], data["behaviour"], tuple(data["cases"]))
        )
        solutions[data["name"]] = "\n".join(data["solution"]) + "\n"
    return tuple(tasks), solutions


TASKS: tuple[CodeTask, ...]
REFERENCE_SOLUTIONS: dict[str, str]
TASKS, REFERENCE_SOLUTIONS = _load()


def split_of(name: str) -> str:
    """The split of a function: by name alone, so it never sits on both sides."""
    return split_for(f"{FAMILY}:{name}")


def prompts(suite: str) -> list[TaskPrompt]:
    """One prompt per task, in the order of TASKS; the split comes from the name."""
    return [
        TaskPrompt.make(
            suite, FAMILY, split_of(t.name), t.user_text, t.spec, REFERENCE_SOLUTIONS[t.name]
        )
        for t in TASKS
    ]
