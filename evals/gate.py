"""The promotion gate: a trained model replaces its parent only on a significant gain.

Both models must have been evaluated the same way (suite, split, n, sampling parameters,
the same prompts). A point estimate is not enough: on a few hundred prompts a +0.02 is
well inside the noise. The gate compares per-prompt pass@1 (c/n) of the two evals with a
paired bootstrap over the prompts (evals/paired.py) and promotes only if

- the one-sided lower bound of Δ = pass@1(model) − pass@1(parent), at `confidence`, is
  above `min_gain` (a negative `min_gain` asks only for "not worse by more than that"),
- and no family's Δ is significantly below −`max_family_drop`: the upper end of its
  two-sided interval (resampled within the family) is not below it.

A falling training loss proves nothing here: a verifier that rewards wrong answers trains
the loss down and the held-out pass@1 with it, which is exactly what this gate is for.
Every decision is stored with its numbers in `promotions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from distillery.config.base import project
from distillery.evals.gate_config import GateConfig, PromoteConfig
from distillery.evals.paired import ComparisonError, Delta, compare, outcomes, read_evals
from distillery.generators import model_store
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import EvalRecord, PromotionRecord
from distillery.warehouse.store import Warehouse


class PromotionError(ValueError):
    """The gate cannot decide (missing or mismatched evals); says what to run."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reasons: tuple[str, ...]
    numbers: dict[str, Any]


def _interval(d: Delta) -> dict[str, float]:
    return {"ci_low": d.ci_low, "ci_high": d.ci_high, "lower_bound": d.lower_bound}


def decide(parent: EvalRecord, child: EvalRecord, config: GateConfig) -> GateDecision:
    for attr in ("suite", "split", "strategy", "n", "params", "prompts"):
        if getattr(parent, attr) != getattr(child, attr):
            raise PromotionError(
                f"the two evals differ in {attr} ({getattr(parent, attr)} vs "
                f"{getattr(child, attr)}); evaluate both models with the same command"
            )
    try:
        before = outcomes(parent)
        after = outcomes(child)
        cmp = compare(before, after, config.gate_bootstrap, config.gate_seed, config.confidence)
    except ComparisonError as exc:
        raise PromotionError(str(exc)) from None
    pct = f"{100 * config.confidence:g}%"
    o = cmp.overall
    reasons = []
    if not o.lower_bound > config.min_gain:
        fell = "fell " if o.delta < 0 else ""
        reasons.append(
            f"held-out pass@1 {fell}{o.before:.3f} → {o.after:.3f}, Δ {o.delta:+.3f}, "
            f"{pct} lower bound {o.lower_bound:+.3f} ≤ {config.min_gain:g}: "
            "not a significant gain"
        )
    families = {}
    for fam, d in cmp.families.items():
        families[fam] = {
            "prompts": d.prompts,
            "parent": d.before,
            "model": d.after,
            "delta": d.delta,
            **_interval(d),
        }
        if d.ci_high < -config.max_family_drop:
            floor = f"{-config.max_family_drop:g}" if config.max_family_drop else "0"
            reasons.append(
                f"family {fam} fell {d.before:.3f} → {d.after:.3f}, Δ {d.delta:+.3f}, "
                f"{pct} CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}] below {floor}: "
                "a significant drop"
            )
    numbers = {
        # The record's own figures (the bake flow and the CLI read these three).
        "parent_pass_at_1": parent.pass_at_1,
        "model_pass_at_1": child.pass_at_1,
        "delta": child.pass_at_1 - parent.pass_at_1,
        "prompts": o.prompts,
        "confidence": config.confidence,
        "resamples": cmp.resamples,
        **_interval(o),
        "families": families,
    }
    return GateDecision(not reasons, tuple(reasons), numbers)


def latest_eval(
    wh: Warehouse, model_id: str, suite: str, split: str, n: int, params: str
) -> EvalRecord | None:
    rows = read_evals(
        wh,
        "model_id = ? AND suite = ? AND split = ? AND strategy = 'sample' AND k = 1 "
        "AND n = ? AND params = ? ORDER BY created_at DESC LIMIT 1",
        [model_id, suite, split, n, params],
    )
    return rows[0] if rows else None


def gate(
    wh: Warehouse, config: PromoteConfig, params: str, run_id: str
) -> tuple[GateDecision, PromotionRecord]:
    """Decide on `config.model` against its parent (or `config.parent`), record it, promote
    if it passed. `params`: the sampling identity both evals must share."""
    model, parent, suite, split, n = (
        config.model,
        config.parent,
        config.suite,
        config.split,
        config.n,
    )
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
        if not found.prompt_ids:
            raise PromotionError(
                f"the eval of {r.name} on {suite}/{split} predates per-prompt outcomes; rerun "
                f"`distillery eval --model {r.name} --suite {suite} --split {split} --n {n}` "
                "with the same options (it reuses the stored draws)"
            )
        evals[r.model_id] = found
    decision = decide(evals[parent_row.model_id], evals[row.model_id], config)
    config_json = canonical_json(project(config, GateConfig).as_params())
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


def promote_stage(
    config: PromoteConfig, root: Path, console: Console
) -> tuple[GateDecision, PromotionRecord]:
    """The promote stage: the gate on the stored held-out evals, recorded as a run; prints
    the decision and its reasons."""
    from distillery.evals.eval_stage import params_identity
    from distillery.generators.base import SamplingParams
    from distillery.warehouse.runs import recorded_run

    c = config
    params = params_identity(SamplingParams.of(c, c.n))
    wh = Warehouse.open(root)
    with recorded_run(wh, "promote", {"model": c.model, "parent": c.parent}) as run_id:
        decision, record = gate(wh, c, params, run_id)
    nums = decision.numbers
    verdict = "[bold green]PROMOTED[/]" if decision.promoted else "[bold red]REFUSED[/]"
    console.print(
        f"{verdict} {c.model}: held-out pass@1 {nums['model_pass_at_1']:.3f} vs parent "
        f"{nums['parent_pass_at_1']:.3f} ({nums['delta']:+.3f})"
    )
    for reason in decision.reasons:
        console.print(f"  - {reason}")
    return decision, record
