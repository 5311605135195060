"""The promotion gate's decisions, case by case, on constructed per-prompt outcomes."""

import json
from dataclasses import replace

import pytest

from distillery.config.base import ConfigError
from distillery.evals.gate import PromotionError, decide
from distillery.evals.gate_config import GateConfig
from distillery.warehouse.records import EvalRecord


def _eval(passes, families=None, n=4, params='{"t":0.8}', ids=None):
    """A pass@1 eval with c = passes[i] of n draws passing on prompt i."""
    m = len(passes)
    ids = ids or [f"p{i:05d}" for i in range(m)]
    families = families or ["a"] * m
    per_family = {}
    for fam in sorted(set(families)):
        cs = [c for c, f in zip(passes, families, strict=True) if f == fam]
        per_family[fam] = {"prompts": len(cs), "pass_at_1": sum(cs) / (n * len(cs))}
    p1 = sum(passes) / (n * m)
    return EvalRecord(
        eval_id="e",
        model_id="m",
        suite="s",
        split="test",
        strategy="sample",
        n=n,
        k=1,
        prompts=m,
        pass_at_1=p1,
        pass_at_k=p1,
        ci_low=p1,
        ci_high=p1,
        per_family=json.dumps(per_family),
        samples_per_query=1.0,
        tokens_per_query=1.0,
        seconds_per_query=1.0,
        tokens=1,
        seconds=1.0,
        params=params,
        run_id="r",
        prompt_ids=list(ids),
        prompt_families=list(families),
        passes=list(passes),
    )


def _noisy_gain(prompts):
    """Every prompt at 2/4 before; after, 54 % of prompts gain a draw and 46 % lose one:
    Δ pass@1 = +0.02 exactly, with per-prompt swings of ±0.25."""
    up = prompts * 54 // 100
    return _eval([2] * prompts), _eval([3] * up + [1] * (prompts - up))


def test_a_clear_gain_is_promoted_with_its_interval():
    before = [i % 3 for i in range(40)]  # 0, 1 or 2 of 4: 39 draws of 160 pass
    after = [c + 1 + i % 2 for i, c in enumerate(before)]  # each gains 1 or 2: 99 of 160
    d = decide(_eval(before), _eval(after), GateConfig())
    assert d.promoted and d.reasons == ()
    nums = d.numbers
    assert nums["parent_pass_at_1"] == pytest.approx(39 / 160)
    assert nums["model_pass_at_1"] == pytest.approx(99 / 160)
    assert nums["delta"] == pytest.approx(60 / 160)
    assert nums["prompts"] == 40 and nums["confidence"] == 0.95 and nums["resamples"] == 2000
    assert 0.3 < nums["ci_low"] <= nums["lower_bound"] < 60 / 160 < nums["ci_high"] < 0.45
    assert nums["families"]["a"]["delta"] == pytest.approx(60 / 160)
    assert nums["families"]["a"]["prompts"] == 40
    # Seeded: the same evals give the same numbers.
    assert decide(_eval(before), _eval(after), GateConfig()).numbers == nums


def test_a_two_point_gain_inside_the_noise_is_refused():
    parent, child = _noisy_gain(100)
    d = decide(parent, child, GateConfig())
    nums = d.numbers
    assert nums["delta"] == pytest.approx(0.02)
    assert nums["lower_bound"] < 0 < nums["ci_high"]
    assert not d.promoted
    assert d.reasons == (
        f"held-out pass@1 0.500 → 0.520, Δ +0.020, 95% lower bound "
        f"{nums['lower_bound']:+.3f} ≤ 0: not a significant gain",
    )
    # The same +0.02 on 25 times as many prompts is signal.
    assert decide(*_noisy_gain(2500), GateConfig()).promoted


def test_no_change_is_not_a_gain_and_min_gain_can_ask_only_for_no_loss():
    same = _eval([1, 2, 3, 2])
    d = decide(same, same, GateConfig())
    assert not d.promoted and "Δ +0.000, 95% lower bound +0.000 ≤ 0" in d.reasons[0]
    assert decide(same, same, GateConfig(min_gain=-0.05)).promoted
    parent, child = _noisy_gain(100)
    assert decide(parent, child, GateConfig(min_gain=-0.05)).promoted
    assert not decide(child, parent, GateConfig(min_gain=-0.01)).promoted


def test_a_significant_drop_says_it_fell():
    parent = _eval([4, 3, 4, 4, 3, 4])
    child = _eval([0, 1, 0, 0, 1, 0])
    d = decide(parent, child, GateConfig())
    assert not d.promoted
    assert d.reasons[0].startswith("held-out pass@1 fell 0.917 → 0.083, Δ -0.833")


def test_a_family_that_drops_significantly_refuses_the_model():
    # Family a (60 prompts) goes from 0 to 3-4 of 4; family b (20 prompts) from 4 to 1-2.
    passes_p = [0] * 60 + [4] * 20
    passes_c = [3 + i % 2 for i in range(60)] + [1 + i % 2 for i in range(20)]
    fams = ["a"] * 60 + ["b"] * 20
    parent, child = _eval(passes_p, fams), _eval(passes_c, fams)
    d = decide(parent, child, GateConfig(max_family_drop=0.5))
    assert d.numbers["lower_bound"] > 0.3  # overall a clear gain
    b = d.numbers["families"]["b"]
    assert b["delta"] == pytest.approx(-0.625) and b["prompts"] == 20
    assert -0.7 < b["ci_low"] <= b["ci_high"] < -0.5
    assert not d.promoted
    assert d.reasons == (
        f"family b fell 1.000 → 0.375, Δ -0.625, 95% CI [{b['ci_low']:+.3f}, "
        f"{b['ci_high']:+.3f}] below -0.5: a significant drop",
    )
    assert decide(parent, child, GateConfig(max_family_drop=0.7)).promoted


def test_a_family_dip_inside_the_noise_does_not_refuse():
    # Family b: 10 prompts; two lose a draw, one gains one: net one draw of 40 lost.
    passes_p = [0] * 40 + [2] * 10
    passes_c = [3] * 40 + [1, 1, 3, 2, 2, 2, 2, 2, 2, 2]
    fams = ["a"] * 40 + ["b"] * 10
    d = decide(_eval(passes_p, fams), _eval(passes_c, fams), GateConfig())
    b = d.numbers["families"]["b"]
    assert b["delta"] == pytest.approx(-1 / 40) and b["ci_low"] < 0 <= b["ci_high"]
    assert d.promoted and d.reasons == ()


def test_evals_made_differently_cannot_be_compared():
    base = _eval([1, 2, 3, 2])
    with pytest.raises(PromotionError, match="differ in n"):
        decide(base, _eval([1, 2, 3, 2], n=8), GateConfig())
    with pytest.raises(PromotionError, match="differ in params"):
        decide(base, _eval([1, 2, 3, 2], params='{"t":0.2}'), GateConfig())
    with pytest.raises(PromotionError, match="differ in prompts"):
        decide(base, _eval([1, 2, 3]), GateConfig())
    other = _eval([1, 2, 3, 2], ids=["p00000", "p00001", "p00002", "q"])
    with pytest.raises(PromotionError, match=r"different prompts \(4 and 4, 3 in common\)"):
        decide(base, other, GateConfig())
    old = replace(base, prompt_ids=[], prompt_families=[], passes=[])  # written before them
    with pytest.raises(PromotionError, match="no per-prompt outcomes"):
        decide(base, old, GateConfig())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_gain": -1.5}, "--min-gain must be in"),
        ({"max_family_drop": -0.1}, "--max-family-drop must be in"),
        ({"confidence": 1.0}, "--confidence must be in"),
        ({"gate_bootstrap": 10}, "at least 100 resamples"),
    ],
)
def test_bad_gate_settings_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GateConfig(**kwargs)
