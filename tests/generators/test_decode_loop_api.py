"""The decode loop calls the model through transformers' current API: no deprecation warning
on any path (prefill, rows sharing a prompt's cache, finished rows compacted away), and a
transformers that ignores the cache argument stops the loop instead of sampling noise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from distillery.generators import model_registry
from distillery.generators.decode_loop import Decode, generate_rows


@pytest.fixture(scope="module")
def tiny():
    return model_registry.load(model_registry.resolve("tiny-random"))


def _rows(model, tok, max_new_tokens=16):
    prompts = ["the quick brown fox", "hello there", "x"]
    enc = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    # One token in 16 stops a row: with these keys half the rows stop within three steps
    # (the batch is compacted) and two run to the length limit.
    eos_ids = list(range(0, len(tok), 16))
    return generate_rows(
        model,
        enc,
        [3, 2, 1],
        np.arange(6, dtype=np.uint64),
        Decode(
            temperature=1.0,
            top_p=0.95,
            max_new_tokens=max_new_tokens,
            eos_ids=eos_ids,
            pad_id=tok.pad_token_id,
        ),
    )


def test_no_deprecation_warning_from_transformers(tiny):
    model, tok = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", PendingDeprecationWarning)
        rows = _rows(model, tok)
    # The paths a warning could hide in were taken: some rows stopped early, some ran on.
    assert {r.finish_reason for r in rows} == {"stop", "length"}
    assert sum(r.finish_reason == "stop" and len(r.tokens) <= 2 for r in rows) >= 2


class _IgnoresCache(torch.nn.Module):
    """A model whose forward drops `cache=`, as transformers before 5.24 did."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, cache=None, **kwargs):
        return self.inner(**kwargs)


def test_a_model_that_ignores_the_cache_is_refused(tiny):
    model, tok = tiny
    with pytest.raises(RuntimeError, match=r"transformers>=5\.24"):
        _rows(_IgnoresCache(model), tok)
