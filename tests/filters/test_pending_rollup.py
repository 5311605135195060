"""Verify planning from a roll-up (`filters/pending_rollup.py`) selects exactly what reading
every file selects: the same pending samples with the same texts, and the same count of
samples already verified, for every scope. Where the snapshot cannot answer exactly (a
covered sample with a verdict of another version only; a covered prompt copied again),
the files are read instead, and the answer is still the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distillery.filters import pending_rollup
from distillery.filters.registry import Verifiers
from distillery.filters.verification import select_pending
from distillery.warehouse import rollup
from distillery.warehouse.compact import compact
from distillery.warehouse.records import SampleRecord
from distillery.warehouse.store import Warehouse
from tests.rollup_world import World, delta_batch, first_batch

SCOPES = (
    (None, None, None),
    ("bench", None, None),
    (None, "m0", None),
    ("bench", "mdl-m1", "test"),
    ("bench", None, "train"),
)


def without_rollup(root: Path, dest: Path) -> Path:
    """A copy of the warehouse with no roll-up: select_pending reads its files."""
    shutil.copytree(root, dest)
    shutil.rmtree(dest / rollup.ROLLUP_DIR)
    return dest


def answers(root: Path) -> list[tuple[list[tuple[str, str, str]], int]]:
    wh = Warehouse.open_existing(root)
    verifiers = Verifiers()
    out = []
    try:
        for suite, model, split in SCOPES:
            pending, done = select_pending(wh, suite, model, split, verifiers)
            out.append(([(p.sample_id, p.family, p.text) for p in pending], done))
    finally:
        verifiers.close()
    return out


def answered_by_rollup(root: Path) -> bool:
    """Whether the snapshot answers the unscoped selection itself (no fallback)."""
    snapshot = rollup.current(root)
    assert snapshot is not None
    verifiers = Verifiers()
    try:

        def register(con, counts) -> None:  # the fast path's own check needs `current`
            import pyarrow as pa

            con.register(
                "current",
                pa.table(
                    {
                        "spec": [c[0] for c in counts],
                        "verifier": ["regex"] * len(counts),
                        "verifier_version": [Verifiers.version({"kind": "regex"})] * len(counts),
                    }
                ),
            )

        wh = Warehouse.open_existing(root)
        return wh.read(
            lambda con: pending_rollup.read(con, wh.root, snapshot, "", [], register) is not None
        )
    finally:
        verifiers.close()


# The first case in the fast lane, the rest in `make test` (`soak`).
@pytest.mark.parametrize(
    "seed", [0, *(pytest.param(s, marks=pytest.mark.soak) for s in range(1, 3))]
)
def test_pending_from_a_rollup_equals_pending_from_the_files(tmp_path: Path, seed: int) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(seed)
    first_batch(world, wh)
    compact(wh.root, grace_s=0)
    got = answers(wh.root)
    assert answered_by_rollup(wh.root)
    assert got == answers(without_rollup(wh.root, tmp_path / "plain-0"))
    # Unscoped: every unverified sample whose prompt has a row (prm-12 and 13 have none).
    verified = {v.sample_id for v in world.verdicts}
    prompts = {p.prompt_id for p in world.prompts}
    expected = [s for s in world.samples if s.sample_id not in verified and s.prompt_id in prompts]
    assert sorted(sid for sid, _, _ in got[0][0]) == sorted(s.sample_id for s in expected)

    delta_batch(world, wh, "run-3", recopy=False)
    assert answered_by_rollup(wh.root)
    got = answers(wh.root)
    assert got == answers(without_rollup(wh.root, tmp_path / "plain-1"))

    delta_batch(world, wh, "run-4")  # a covered prompt copied again: read from the files
    assert not answered_by_rollup(wh.root)
    assert answers(wh.root) == answers(without_rollup(wh.root, tmp_path / "plain-2"))


def old_verdict_only(world: World, wh: Warehouse, prompt_ids: set[str]) -> SampleRecord:
    """An unverified draw of one of `prompt_ids` given a verdict of another version only,
    then a compaction (and its roll-up)."""
    verified = {v.sample_id for v in world.verdicts}
    sample = next(
        s for s in world.samples if s.prompt_id in prompt_ids and s.sample_id not in verified
    )
    wh.write([world.verdict(sample, "run-x", version="old")])
    compact(wh.root, grace_s=0)
    return sample


def test_a_covered_sample_with_only_another_version_falls_back_to_the_files(
    tmp_path: Path,
) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(11)
    first_batch(world, wh)
    sample = old_verdict_only(world, wh, {p.prompt_id for p in world.prompts})
    assert not answered_by_rollup(wh.root)
    got = answers(wh.root)
    assert sample.sample_id in {sid for sid, _, _ in got[0][0]}
    assert got == answers(without_rollup(wh.root, tmp_path / "plain"))


def test_a_prompt_that_arrives_late_brings_its_covered_samples_into_the_check(
    tmp_path: Path,
) -> None:
    wh = Warehouse.open(tmp_path / "wh")
    world = World(13)
    first_batch(world, wh)
    # prm-12 has no prompt row yet: its draw is out of every scope.
    orphan = old_verdict_only(world, wh, {"prm-12"})
    assert answered_by_rollup(wh.root)
    assert orphan.sample_id not in {sid for sid, _, _ in answers(wh.root)[0][0]}

    wh.write([world.prompt(12)])  # now in scope, and pending: read from the files
    assert not answered_by_rollup(wh.root)
    got = answers(wh.root)
    assert orphan.sample_id in {sid for sid, _, _ in got[0][0]}
    assert got == answers(without_rollup(wh.root, tmp_path / "plain"))
