"""A random warehouse for the roll-up tests: rows whose times and copies are under control.

`first_batch` is what a compaction covers; `delta_batch` writes every kind of row that can
change an answer after it (see tests/warehouse/test_rollup.py and
tests/filters/test_pending_rollup.py).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from distillery.filters.registry import Verifiers
from distillery.warehouse.ids import canonical_json
from distillery.warehouse.records import ModelRecord, PromptRecord, SampleRecord, VerdictRecord
from distillery.warehouse.store import Warehouse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAMILIES = ("json", "math", "code")
SPEC = {"kind": "regex", "pattern": "a"}
VERSION = Verifiers.version(SPEC)


class World:
    """Random rows over a few prompts and two models, with their times under control."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = 0
        self.samples: list[SampleRecord] = []
        self.verdicts: list[VerdictRecord] = []
        self.prompts: list[PromptRecord] = []
        self.models = [self.model(f"m{i}") for i in range(2)]

    def at(self, back: int = 0) -> datetime:
        self.clock += 1
        return T0 + timedelta(seconds=self.clock - back)

    def model(self, name: str) -> ModelRecord:
        return ModelRecord(
            f"mdl-{name}", name, name, "alias", None, None, None, True, False, "run-a", T0
        )

    def prompt(self, i: int, family: str | None = None, back: int = 0) -> PromptRecord:
        family = family or FAMILIES[i % len(FAMILIES)]
        p = PromptRecord(
            f"prm-{i}", "bench", family, ("train", "test")[i % 2], "[]", canonical_json(SPEC),
            None, "run-p",
            self.at(back),
        )  # fmt: skip
        self.prompts.append(p)
        return p

    def sample(self, prompt: int, run: str, procedure: str = "sample") -> SampleRecord:
        rng = self.rng
        s = SampleRecord(
            f"smp-{len(self.samples)}-{rng.random()}", f"prm-{prompt}",
            rng.choice(self.models).model_id, run, "hf", rng.randrange(8), 0,
            rng.choice((0.8, 1.0)), 0.95, 64, "text", 1, 1, "stop", 0.1, procedure,
            None, self.at(),
        )  # fmt: skip
        self.samples.append(s)
        return s

    def verdict(
        self, sample: SampleRecord, run: str, version: str = VERSION, back: int = 0
    ) -> VerdictRecord:
        v = VerdictRecord(
            sample.sample_id, "regex", version, self.rng.random() < 0.5, None, "ok", "", 0.0,
            run, self.at(back),
        )  # fmt: skip
        self.verdicts.append(v)
        return v

    def copy(self, row: SampleRecord | VerdictRecord | PromptRecord, run: str, back: int = 0):
        return replace(row, run_id=run, created_at=self.at(back))


def first_batch(world: World, wh: Warehouse) -> None:
    rows: list[object] = [*world.models]
    rows += [world.prompt(i) for i in range(12)]
    for run in ("run-1", "run-2"):
        for _ in range(40):
            s = world.sample(world.rng.randrange(14), run)  # prm-12, 13: no prompt row yet
            rows.append(s)
            if world.rng.random() < 0.8:
                rows.append(world.verdict(s, run))
        rows.append(world.sample(0, run, "retry"))
    wh.write(rows)


def delta_batch(world: World, wh: Warehouse, run: str, recopy: bool = True) -> None:
    """Rows written after a compaction; `recopy`: with a new copy of a covered prompt."""
    rng = world.rng
    # Prompt 3 is touched only by its new, earlier copy below: nothing else may change its
    # rows, so only that copy can move them to the other family.
    old = [s for s in world.samples if s.prompt_id != "prm-3"]
    rows: list[object] = []
    for _ in range(10):  # new draws, most verified
        s = world.sample(rng.choice([i for i in range(16) if i != 3]), run)
        rows.append(s)
        if rng.random() < 0.7:
            rows.append(world.verdict(s, run))
    for s in rng.sample(old, 8):  # another verifier version for covered samples
        rows.append(world.verdict(s, run, version="old"))
    for s in rng.sample(old, 5):  # verified now, or again with the same version
        rows.append(world.verdict(s, run))
    rows += [world.copy(s, run) for s in rng.sample(old, 4)]  # copies of covered samples
    rows += [world.copy(s, run, back=10_000) for s in rng.sample(old, 2)]  # earlier time
    old_ids = {s.sample_id for s in old}
    verdicts = [v for v in world.verdicts if v.sample_id in old_ids]
    rows += [world.copy(v, run, back=10_000) for v in rng.sample(verdicts, 3)]
    rows.append(world.prompt(12))  # a prompt whose draws were covered before it existed
    if recopy:
        rows.append(world.prompt(3, family="other", back=10_000))  # an earlier, other copy
    wh.write(rows)
