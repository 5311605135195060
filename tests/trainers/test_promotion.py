"""The promotion gate's decisions, case by case."""

import json

import pytest

from trainers.promotion import GateConfig, PromotionError, decide
from warehouse.records import EvalRecord


def _eval(p1, families, prompts=10, n=4, params='{"t":0.8}'):
    return EvalRecord(
        eval_id="e",
        model_id="m",
        suite="s",
        split="test",
        strategy="sample",
        n=n,
        k=1,
        prompts=prompts,
        pass_at_1=p1,
        pass_at_k=p1,
        ci_low=p1,
        ci_high=p1,
        per_family=json.dumps({f: {"pass_at_1": v} for f, v in families.items()}),
        samples_per_query=1.0,
        tokens_per_query=1.0,
        seconds_per_query=1.0,
        tokens=1,
        seconds=1.0,
        params=params,
        run_id="r",
    )


def test_better_model_is_promoted():
    d = decide(_eval(0.4, {"a": 0.4}), _eval(0.6, {"a": 0.6}), GateConfig())
    assert d.promoted and d.reasons == ()
    assert d.numbers["delta"] == pytest.approx(0.2)


def test_equal_is_promoted_and_any_drop_beyond_tolerance_is_not():
    assert decide(_eval(0.5, {}), _eval(0.5, {}), GateConfig()).promoted
    d = decide(_eval(0.5, {}), _eval(0.49, {}), GateConfig())
    assert not d.promoted and "fell from 0.500 to 0.490" in d.reasons[0]
    assert decide(_eval(0.5, {}), _eval(0.49, {}), GateConfig(tolerance=0.02)).promoted


def test_one_family_dropping_too_far_blocks_promotion():
    parent = _eval(0.5, {"a": 0.2, "b": 0.8})
    child = _eval(0.6, {"a": 0.5, "b": 0.7})  # overall up, b down by 0.1
    d = decide(parent, child, GateConfig(max_family_drop=0.05))
    assert not d.promoted and d.reasons == (
        "family b fell from 0.800 to 0.700 (allowed drop 0.050)",
    )
    assert decide(parent, child, GateConfig(max_family_drop=0.1)).promoted


def test_evals_made_differently_cannot_be_compared():
    with pytest.raises(PromotionError, match="differ in n"):
        decide(_eval(0.5, {}), _eval(0.5, {}, n=8), GateConfig())
    with pytest.raises(PromotionError, match="differ in params"):
        decide(_eval(0.5, {}), _eval(0.5, {}, params='{"t":0.2}'), GateConfig())
    with pytest.raises(PromotionError):
        GateConfig(tolerance=-0.1)
