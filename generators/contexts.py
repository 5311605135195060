"""Contexts for the "prompted" search: a system prompt and worked exemplars per family.

A better-instructed prompt is an inference-time search of its own: p₀ told the format
and shown three solved examples answers in the right form far more often than p₀ given
the bare prompt. Its passing outputs are then trained against the *bare* prompt (context
distillation), so the baked model does without the context what p₀ did with it.

Exemplars are the references of train prompts of the same family (the first few by
prompt id, so the choice is stable); a prompt that is an exemplar is never prompted with
its own answer in view. Every context is a row of the `contexts` table and every prompted
sample names its `context_id`, so SQL can say which context found a training target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from distillery.generators.base import SamplingError
from distillery.generators.search_config import DEFAULT_SHOTS
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import ContextRecord
from distillery.warehouse.store import Warehouse

# Said once per family of the built-in suite; any other suite gets GENERIC_SYSTEM unless
# a context file names its own.
SEEDS_SYSTEM: dict[str, str] = {
    "number": "Reply with the final number only: digits, no words, no units, no working.",
    "date": "Reply with one date in YYYY-MM-DD format and nothing else.",
    "json": (
        "Reply with one JSON object only, with exactly the keys asked for and correct "
        "values. No prose, no code fences."
    ),
    "code": (
        "Reply with only the complete, correct Python function in one ```python block, "
        "no explanation."
    ),
    "summary": (
        "Summarise in exactly two short plain sentences, under 40 words in all, with no "
        "emoji, no lists and no headings."
    ),
}
GENERIC_SYSTEM = (
    "Follow the instructions exactly. Reply with the answer only, in the exact format asked "
    "for, with no extra words."
)


@dataclass(frozen=True)
class Context:
    name: str
    suite: str
    family: str
    system: str | None
    shots: tuple[tuple[str, str], ...]  # (user, assistant)
    exemplar_ids: tuple[str, ...] = ()

    @property
    def context_id(self) -> str:
        return content_id("ctx", self.suite, self.family, self.system, self.shots)

    def apply(self, messages: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """The prompt's messages with the context before them (its own system message, if
        any, follows ours so the prompt's instruction has the last word)."""
        head: list[tuple[str, str]] = [("system", self.system)] if self.system else []
        for user, assistant in self.shots:
            head += [("user", user), ("assistant", assistant)]
        return (*head, *messages)

    def to_record(self, run_id: str) -> ContextRecord:
        return ContextRecord(
            context_id=self.context_id,
            name=self.name,
            suite=self.suite,
            family=self.family,
            system=self.system,
            shots=canonical_json([list(s) for s in self.shots]),
            exemplar_ids=list(self.exemplar_ids),
            run_id=run_id,
        )


def read_context_file(path: Path) -> dict[str, dict[str, object]]:
    """{family: {"system": str, "shots": [[user, assistant], ...]}} from a JSON file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SamplingError(f"cannot read context file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SamplingError(
            f"context file {path} must map family -> {{'system': ..., 'shots': [[user, answer]]}}"
        )
    for fam, spec in data.items():
        shots = spec.get("shots", [])
        ok = isinstance(shots, list) and all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s)
            for s in shots
        )
        if not ok or not isinstance(spec.get("system", ""), str | None):
            raise SamplingError(
                f"context file {path}, family {fam!r}: 'shots' must be [[user, answer], ...] "
                "and 'system' a string"
            )
    return data


def build_contexts(
    wh: Warehouse,
    suite: str,
    shots: int = DEFAULT_SHOTS,
    context_file: Path | None = None,
) -> dict[str, Context]:
    """One context per family of `suite`: from `context_file` where it names the family,
    else the family's system prompt and `shots` exemplars from train references."""
    if shots < 0:
        raise SamplingError(f"--shots must be >= 0 (got {shots})")
    given = read_context_file(context_file) if context_file else {}
    families = [
        r[0]
        for r in wh.query("SELECT DISTINCT family FROM prompts WHERE suite = ? ORDER BY 1", [suite])
    ]
    out: dict[str, Context] = {}
    for fam in families:
        if fam in given:
            spec = given[fam]
            pairs = tuple((u, a) for u, a in spec.get("shots", []))  # type: ignore[union-attr]
            system = spec.get("system")
            out[fam] = Context(
                f"{suite}/{fam}/file", suite, fam, str(system) if system else None, pairs
            )
            continue
        rows = wh.query(
            "SELECT prompt_id, messages, reference FROM prompts WHERE suite = ? AND family = ? "
            "AND split = 'train' AND reference IS NOT NULL ORDER BY prompt_id LIMIT ?",
            [suite, fam, shots],
        )
        pairs = tuple((json.loads(m)[-1]["content"], ref) for _, m, ref in rows)
        system = SEEDS_SYSTEM.get(fam, GENERIC_SYSTEM) if suite == "seeds" else GENERIC_SYSTEM
        out[fam] = Context(
            f"{suite}/{fam}/system+{len(pairs)}shot",
            suite,
            fam,
            system,
            pairs,
            tuple(r[0] for r in rows),
        )
    return out


def record_contexts(wh: Warehouse, contexts: dict[str, Context], run_id: str) -> None:
    have = wh.existing("contexts", "context_id", (c.context_id for c in contexts.values()))
    new = [c.to_record(run_id) for c in contexts.values() if c.context_id not in have]
    if new:
        wh.write(new)
