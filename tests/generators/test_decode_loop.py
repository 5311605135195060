import numpy as np
import pytest
import torch

from distillery.generators import model_registry
from distillery.generators.decode_loop import (
    TOPK_PREFILTER,
    Decode,
    generate_rows,
    sample_next,
    uniforms,
)


def reference_top_p(logits: torch.Tensor, temperature: float, top_p: float) -> tuple:
    """transformers' TopPLogitsWarper rule in float64: (token order, CDF over kept tokens)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_probs, idx = probs.sort(descending=True)
    above = sorted_probs.cumsum(0) - sorted_probs
    kept = torch.where(above < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    return idx, kept.cumsum(0) / kept.sum(), int((kept > 0).sum())


@pytest.mark.parametrize("spread", [0.5, 3.0, 12.0])
def test_sample_next_matches_the_full_sort_reference(spread):
    g = torch.Generator().manual_seed(1)
    # Flat logits (spread 0.5) force the full-sort fallback; peaked ones stay in the prefilter.
    logits = torch.randn(64, 3000, generator=g) * spread
    u = torch.rand(64, generator=g, dtype=torch.float64)
    got = sample_next(logits, 0.8, 0.95, u).tolist()
    exact = 0
    for i in range(64):
        idx, cdf, n_kept = reference_top_p(logits[i], 0.8, 0.95)
        rank = int((idx == got[i]).nonzero())
        assert rank < n_kept, "sampled a token outside the nucleus"
        lo = float(cdf[rank - 1]) if rank else 0.0
        # The pick is the token whose CDF interval holds u, up to float32 rounding.
        assert lo - 1e-5 <= float(u[i]) <= float(cdf[rank]) + 1e-5
        exact += lo <= float(u[i]) < float(cdf[rank])
    assert exact >= 60


def test_prefilter_fallback_is_exercised():
    flat = torch.zeros(2, TOPK_PREFILTER * 4)
    got = sample_next(flat, 1.0, 0.95, torch.tensor([0.0, 0.999]))
    # Uniform logits: the nucleus spans 95% of the vocabulary, past the prefilter.
    assert int(got[1]) >= TOPK_PREFILTER


def test_greedy_at_temperature_zero():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 1.0, 0.0]])
    assert sample_next(logits, 0.0, 0.95, torch.zeros(2)).tolist() == [1, 0]


def test_uniforms_depend_only_on_key_and_step():
    keys = np.array([1, 2, 3], dtype=np.uint64)
    a = uniforms(keys, 5)
    b = uniforms(keys[[2, 0]], 5)
    assert a[2] == b[0] and a[0] == b[1]
    assert not torch.equal(a, uniforms(keys, 6))
    many = uniforms(np.arange(20000, dtype=np.uint64), 0)
    assert float(many.min()) >= 0.0 and float(many.max()) < 1.0
    assert abs(float(many.mean()) - 0.5) < 0.01


@pytest.fixture(scope="module")
def tiny():
    return model_registry.load(model_registry.resolve("tiny-random"))


def _rows(model, tok, prompts, repeats, keys, max_new_tokens=12, temperature=1.0):
    enc = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    return generate_rows(
        model,
        enc,
        repeats,
        np.array(keys, dtype=np.uint64),
        Decode(
            temperature=temperature,
            top_p=0.95,
            max_new_tokens=max_new_tokens,
            eos_ids=[tok.eos_token_id],
            pad_id=tok.pad_token_id,
        ),
    )


def test_rows_follow_prompts_and_repeats(tiny):
    model, tok = tiny
    rows = _rows(model, tok, ["abc", "hello there"], [3, 2], [10, 11, 12, 20, 21])
    assert len(rows) == 5
    for r in rows:
        assert r.finish_reason in ("stop", "length")
        assert len(r.tokens) <= 12
        assert (r.finish_reason == "length") == (len(r.tokens) == 12)
        assert tok.eos_token_id not in r.tokens


def test_a_row_is_a_function_of_its_key_not_its_batch(tiny):
    model, tok = tiny
    together = _rows(model, tok, ["same prompt", "other stuff"], [2, 2], [7, 8, 9, 10])
    alone = _rows(model, tok, ["same prompt"], [1], [8])
    assert together[1].tokens == alone[0].tokens
    swapped = _rows(model, tok, ["same prompt"], [2], [8, 7])
    assert swapped[0].tokens == together[1].tokens and swapped[1].tokens == together[0].tokens


def test_greedy_rows_match_transformers_generate(tiny):
    model, tok = tiny
    prompt = "the quick brown fox"
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ref = model.generate(
        ids,
        do_sample=False,
        max_new_tokens=10,
        min_new_tokens=10,
        pad_token_id=tok.pad_token_id,
        eos_token_id=None,
    )
    (row,) = _rows(model, tok, [prompt], [1], [0], max_new_tokens=10, temperature=0.0)
    want = ref[0, ids.shape[1] :].tolist()
    cut = want.index(tok.eos_token_id) if tok.eos_token_id in want else len(want)
    assert row.tokens == want[:cut]


def test_bad_shapes_are_rejected(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="row keys"):
        _rows(model, tok, ["a"], [2], [1])
    with pytest.raises(ValueError, match="repeat count"):
        _rows(model, tok, ["a"], [0], [])
