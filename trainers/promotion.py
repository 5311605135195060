"""The promotion gate: a trained model replaces its parent only if held-out pass@1 held.

Both models must have been evaluated the same way (suite, split, n, sampling parameters,
same number of prompts). The model is refused if its overall pass@1 is more than
`tolerance` below its parent's, or if any family's pass@1 drops by more than
`max_family_drop`. A falling training loss proves nothing here: a verifier that rewards
wrong answers trains the loss down and the held-out pass@1 with it, which is exactly
what this gate is for. Every decision is stored with its numbers in `promotions`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from generators import model_store
from warehouse.ids import canonical_json, content_id
from warehouse.records import EvalRecord, PromotionRecord
from warehouse.store import Warehouse


class PromotionError(ValueError):
    """The gate cannot decide (missing or mismatched evals); says what to run."""


@dataclass(frozen=True)
class GateConfig:
    tolerance: float = 0.0  # how far overall pass@1 may fall below the parent's
    max_family_drop: float = 0.05  # how far any one family's pass@1 may fall

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance <= 1 or not 0 <= self.max_family_drop <= 1:
            raise PromotionError("--tolerance and --max-family-drop must be in [0, 1]")


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reasons: tuple[str, ...]
    numbers: dict[str, Any]


def decide(parent: EvalRecord, child: EvalRecord, config: GateConfig) -> GateDecision:
    for attr in ("suite", "split", "n", "params", "prompts"):
        if getattr(parent, attr) != getattr(child, attr):
            raise PromotionError(
                f"the two evals differ in {attr} ({getattr(parent, attr)} vs "
                f"{getattr(child, attr)}); evaluate both models with the same command"
            )
    fam_p, fam_c = json.loads(parent.per_family), json.loads(child.per_family)
    reasons = []
    delta = child.pass_at_1 - parent.pass_at_1
    if delta < -config.tolerance - 1e-12:
        reasons.append(
            f"held-out pass@1 fell from {parent.pass_at_1:.3f} to {child.pass_at_1:.3f} "
            f"(tolerance {config.tolerance:.3f})"
        )
    families = {}
    for fam in sorted(set(fam_p) | set(fam_c)):
        before = fam_p.get(fam, {}).get("pass_at_1", 0.0)
        after = fam_c.get(fam, {}).get("pass_at_1", 0.0)
        families[fam] = {"parent": before, "model": after, "delta": after - before}
        if after - before < -config.max_family_drop - 1e-12:
            reasons.append(
                f"family {fam} fell from {before:.3f} to {after:.3f} "
                f"(allowed drop {config.max_family_drop:.3f})"
            )
    numbers = {
        "parent_pass_at_1": parent.pass_at_1,
        "model_pass_at_1": child.pass_at_1,
        "delta": delta,
        "families": families,
    }
    return GateDecision(not reasons, tuple(reasons), numbers)


def latest_eval(
    wh: Warehouse, model_id: str, suite: str, split: str, n: int, params: str
) -> EvalRecord | None:
    from dataclasses import fields

    cols = [f.name for f in fields(EvalRecord)]
    rows = wh.query(
        f"SELECT {', '.join(cols)} FROM evals WHERE model_id = ? AND suite = ? AND split = ? "
        "AND strategy = 'sample' AND k = 1 AND n = ? AND params = ? "
        "ORDER BY created_at DESC LIMIT 1",
        [model_id, suite, split, n, params],
    )
    return EvalRecord(*rows[0]) if rows else None


def gate(
    wh: Warehouse,
    model: str,
    suite: str,
    split: str,
    n: int,
    params: str,
    config: GateConfig,
    run_id: str,
    parent: str | None = None,
) -> tuple[GateDecision, PromotionRecord]:
    """Decide on `model` against its parent (or `parent`), record it, promote if it passed."""
    row = model_store.model_row(wh, model)
    if row is None:
        raise PromotionError(f"no model {model!r} in the warehouse; train or sample it first")
    parent_row = model_store.model_row(wh, parent or (row.parent_id or ""))
    if parent_row is None:
        raise PromotionError(f"{model!r} has no parent model to compare with; pass --parent NAME")
    evals = {}
    for r in (row, parent_row):
        found = latest_eval(wh, r.model_id, suite, split, n, params)
        if found is None:
            raise PromotionError(
                f"no eval of {r.name} on {suite}/{split} with n={n} and these sampling "
                f"parameters; run `distillery eval --model {r.name} --suite {suite} "
                f"--split {split} --n {n}` first"
            )
        evals[r.model_id] = found
    decision = decide(evals[parent_row.model_id], evals[row.model_id], config)
    config_json = canonical_json(asdict(config))
    record = PromotionRecord(
        promotion_id=content_id(
            "prm",
            row.model_id,
            parent_row.model_id,
            evals[row.model_id].eval_id,
            evals[parent_row.model_id].eval_id,
            config_json,
        ),
        model_id=row.model_id,
        parent_id=parent_row.model_id,
        suite=suite,
        split=split,
        model_eval_id=evals[row.model_id].eval_id,
        parent_eval_id=evals[parent_row.model_id].eval_id,
        promoted=decision.promoted,
        reasons=list(decision.reasons),
        numbers=canonical_json(decision.numbers),
        config=config_json,
        run_id=run_id,
    )
    if not wh.existing("promotions", "promotion_id", [record.promotion_id]):
        wh.write([record])
    if decision.promoted:
        model_store.set_promoted(wh, row.model_id, run_id)
    return decision, record
