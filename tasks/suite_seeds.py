"""The built-in "seeds" suite: the five task families drawn from the seed documents.

number, date, json, code and summary each mirror one example from shared/seeds/ (the
factorial of 5, next Monday as an ISO date, JSON with {city, country}, the codegen
functions, the two-sentence summary). Each family module builds its own prompts; this
module only fixes the family order and removes repeats.
"""

from __future__ import annotations

from collections.abc import Callable

from distillery.tasks import seeds_code, seeds_date, seeds_json, seeds_number, seeds_summary
from distillery.tasks.base import TaskPrompt

FAMILIES: tuple[str, ...] = ("number", "date", "json", "code", "summary")

_BUILDERS: dict[str, Callable[[str], list[TaskPrompt]]] = {
    "number": seeds_number.prompts,
    "date": seeds_date.prompts,
    "json": seeds_json.prompts,
    "code": seeds_code.prompts,
    "summary": seeds_summary.prompts,
}


class SeedsSuite:
    """Every seed prompt, both splits, families in FAMILIES order."""

    name: str = "seeds"

    def prompts(self) -> list[TaskPrompt]:
        seen: set[str] = set()
        out: list[TaskPrompt] = []
        for family in FAMILIES:
            for prompt in _BUILDERS[family](self.name):
                # Families never collide today; this keeps the suite's promise (one prompt
                # per id, first wins) if a later family or template ever does.
                if prompt.prompt_id not in seen:
                    seen.add(prompt.prompt_id)
                    out.append(prompt)
        return out
