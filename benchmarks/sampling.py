"""Sampling throughput: distillery's sampler vs the bare engine it wraps vs naive `generate`.

In one process, on the same prompts and parameters:
  engine      `decode_loop.generate_rows` on pre-encoded prompts (no warehouse, no templating)
  distillery  `run_sampling` with the transformers backend into a fresh warehouse
  naive fp32  padded fp32 `model.generate(num_return_sequences=k)`, 64 rows a call
  hf bf16     the same in bf16 at 256 rows a call (transformers' best measured setting)
Tokens are completion tokens before the stop token. Usage:

    python benchmarks/sampling.py [--prompts 16] [--k 16] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillery.generators.base import SampleRequest, SamplingParams
from distillery.generators.decode_loop import Decode, generate_rows
from distillery.generators.model_registry import load, resolve
from distillery.generators.sampler_transformers import TransformersBackend
from distillery.generators.sampling import Drawing, PromptRow, run_sampling
from distillery.tasks.suite_seeds import SeedsSuite
from distillery.warehouse.store import Warehouse


def pick_prompts(n: int) -> list[PromptRow]:
    by_family: dict[str, list] = {}
    for p in SeedsSuite().prompts():
        if p.split == "train":
            by_family.setdefault(p.family, []).append(p)
    out: list[PromptRow] = []
    i = 0
    while len(out) < n:  # round-robin over families: a realistic mix of lengths
        for fam in sorted(by_family):
            if len(out) < n:
                p = by_family[fam][i]
                out.append(PromptRow(p.prompt_id, p.family, p.messages))
        i += 1
    return out


def hf_generate(model, tok, prompts, k, params, rows_per_call) -> tuple[int, float]:
    tok.padding_side = "left"
    texts = [
        tok.apply_chat_template(
            [{"role": r, "content": c} for r, c in p.messages],
            add_generation_prompt=True,
            tokenize=False,
        )
        for p in prompts
    ]
    per_call = max(1, rows_per_call // k)
    tokens, started = 0, time.perf_counter()
    torch.manual_seed(0)
    for i in range(0, len(texts), per_call):
        batch = tok(
            texts[i : i + per_call], return_tensors="pt", padding=True, add_special_tokens=False
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=k,
                pad_token_id=tok.pad_token_id,
            )
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            tokens += row.index(tok.eos_token_id) if tok.eos_token_id in row else len(row)
    return tokens, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args()
    params = SamplingParams(n=args.k, max_new_tokens=args.max_new_tokens, seed=0)
    prompts = pick_prompts(args.prompts)
    resolved = resolve("smollm2-135m")
    backend = TransformersBackend(resolved, dtype="bf16")
    model, tok = backend._model, backend.tokenizer
    reqs = [SampleRequest(p.prompt_id, p.messages, tuple(range(args.k))) for p in prompts]
    encoded = [backend.encode(r) for r in reqs]
    batches = list(backend.batches(reqs, encoded))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(prompts)} prompts "
        f"× k={args.k}, max_new_tokens={args.max_new_tokens}, {len(batches)} batch(es)"
    )

    def engine() -> tuple[int, float]:
        tokens, started = 0, time.perf_counter()
        for b in batches:
            keys = np.array(
                [params.row_seed(reqs[i].prompt_id, j) for i in b for j in range(args.k)],
                dtype=np.uint64,
            )
            rows = generate_rows(
                model,
                [encoded[i] for i in b],
                [args.k] * len(b),
                keys,
                Decode(
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_new_tokens=params.max_new_tokens,
                    eos_ids=backend.stop_ids(),
                    pad_id=tok.pad_token_id,
                ),
            )
            tokens += sum(len(r.tokens) for r in rows)
        return tokens, time.perf_counter() - started

    def distillery() -> tuple[int, float]:
        with tempfile.TemporaryDirectory() as d:
            wh = Warehouse.open(d)
            started = time.perf_counter()
            s = run_sampling(Drawing(wh, backend, resolved, "run-bench"), prompts, params)
            elapsed = time.perf_counter() - started
            assert s.written == len(prompts) * args.k
            return s.tokens, elapsed

    # Warm-up: first calls pay one-off allocator and oneDNN kernel set-up.
    generate_rows(
        model,
        encoded[:2],
        [4, 4],
        np.arange(8, dtype=np.uint64),
        Decode(
            temperature=0.8,
            top_p=0.95,
            max_new_tokens=8,
            eos_ids=backend.stop_ids(),
            pad_id=tok.pad_token_id,
        ),
    )
    engine_runs, distillery_runs = [], []
    for _ in range(args.repeats):  # alternate, so drift hits both alike
        for fn, acc in ((engine, engine_runs), (distillery, distillery_runs)):
            tokens, secs = fn()
            acc.append(tokens / secs)
            print(
                f"  {fn.__name__:<10} {tokens} tokens {secs:6.1f}s {tokens / secs:7.1f} tok/s",
                flush=True,
            )
    e, dd = statistics.median(engine_runs), statistics.median(distillery_runs)
    print(f"engine      {e:7.1f} tok/s (median of {args.repeats})")
    print(f"distillery  {dd:7.1f} tok/s  ratio to engine {dd / e:.3f}  (goal >= 0.95)")
    if args.skip_hf:
        return
    model32, tok32 = load(resolved, dtype=torch.float32)
    tokens, secs = hf_generate(model32, tok32, prompts, args.k, params, 64)
    naive = tokens / secs
    print(f"naive fp32 generate, 64 rows/call: {tokens} tokens {secs:.1f}s {naive:.1f} tok/s")
    tokens, secs = hf_generate(model, tok, prompts, args.k, params, 256)
    hf16 = tokens / secs
    print(f"hf bf16 generate, 256 rows/call:   {tokens} tokens {secs:.1f}s {hf16:.1f} tok/s")
    print(f"distillery default vs naive fp32 generate: {dd / naive:.2f}x  (goal >= 3x)")
    print(f"distillery default vs hf bf16 generate:    {dd / hf16:.2f}x")


if __name__ == "__main__":
    main()
