"""The CPU sampling engine: one prefill per prompt, k rows per prompt, a lean decode loop.

Why not `model.generate(num_return_sequences=k)`: it prefills every prompt k times, pays
a stack of logits processors per step, sorts the whole vocabulary for top-p, and keeps
finished rows in the batch until the longest one ends. Here each prompt is prefilled once
and its KV cache repeated k times, top-p looks at the top few hundred tokens (falling back
to a full sort only when their mass is short of p, so the result is exact), finished rows
are dropped from the batch, and each row draws its randomness from a counter-based hash of
(seed, row key, step), so a row's text does not depend on which other rows share its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from distillery.generators.interrupt import check as check_interrupt

# Enough for the nucleus of almost every step of a small chat model at p≈0.95.
TOPK_PREFILTER = 256
# Drop finished rows once this share of the batch is done (index_select costs a copy).
COMPACT_FRACTION = 0.25

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each element (Steele et al., SplitMix64)."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return z ^ (z >> np.uint64(31))


def uniforms(row_keys: np.ndarray, step: int) -> torch.Tensor:
    """One U(0,1) per row for this step, a pure function of (row key, step)."""
    with np.errstate(over="ignore"):
        mixed = splitmix64(row_keys ^ splitmix64(np.full_like(row_keys, step)))
    # 53 random bits → a double in [0, 1).
    return torch.from_numpy((mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53))


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor
) -> torch.Tensor:
    """Temperature + nucleus sampling with given uniforms; greedy when temperature is 0."""
    if temperature <= 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    k = min(TOPK_PREFILTER, probs.shape[-1])
    top_probs, top_idx = probs.topk(k, dim=-1)
    short = top_probs.sum(dim=-1) < top_p
    if bool(short.any()):
        # The nucleus reaches past the prefilter for these rows: sort their whole vocabulary.
        full_probs, full_idx = probs[short].sort(dim=-1, descending=True)
        out = torch.empty(logits.shape[0], dtype=torch.long)
        out[short] = _pick(full_probs, full_idx, top_p, u[short])
        keep = ~short
        if bool(keep.any()):
            out[keep] = _pick(top_probs[keep], top_idx[keep], top_p, u[keep])
        return out
    return _pick(top_probs, top_idx, top_p, u)


def _pick(
    sorted_probs: torch.Tensor, sorted_idx: torch.Tensor, top_p: float, u: torch.Tensor
) -> torch.Tensor:
    cum = sorted_probs.cumsum(dim=-1)
    # transformers' rule: keep a token while the mass ranked above it is below p.
    kept = torch.where(cum - sorted_probs < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    kept_cum = kept.cumsum(dim=-1)
    target = (u.to(kept_cum.dtype) * kept_cum[:, -1]).unsqueeze(-1)
    choice = torch.searchsorted(kept_cum, target, right=True).clamp_(max=kept.shape[-1] - 1)
    return sorted_idx.gather(-1, choice).squeeze(-1)


@dataclass(frozen=True)
class RowResult:
    """One completion: its token ids (without the stop token) and why it ended."""

    tokens: list[int]
    finish_reason: str  # "stop" | "length"


@dataclass(frozen=True)
class Decode:
    """How every row is decoded: the sampling knobs and the tokens that end or pad a row."""

    temperature: float
    top_p: float
    max_new_tokens: int
    eos_ids: Sequence[int]
    pad_id: int


def generate_rows(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    repeats: Sequence[int],
    row_keys: np.ndarray,
    decode: Decode,
    on_step: Callable[[int], None] | None = None,
) -> list[RowResult]:
    """`repeats[i]` completions for prompt i, rows in prompt order, decoded per `decode`.

    `row_keys` (uint64, one per row) seed each row's random stream. `on_step(n)` is told
    how many tokens were produced by each decode step, for progress bars.
    """
    temperature, top_p, max_new_tokens = decode.temperature, decode.top_p, decode.max_new_tokens
    eos_ids, pad_id = decode.eos_ids, decode.pad_id
    from transformers import DynamicCache

    if len(repeats) != len(prompts) or min(repeats, default=1) < 1:
        raise ValueError("need one repeat count >= 1 per prompt")
    n_rows = sum(repeats)
    if row_keys.shape != (n_rows,):
        raise ValueError(f"need {n_rows} row keys, got {row_keys.shape}")
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        # Left padding: every prompt ends at the same column, so decoding appends in step.
        ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)

    out_tokens: list[list[int]] = [[] for _ in range(n_rows)]
    finish = ["length"] * n_rows
    eos = torch.tensor(list(eos_ids), dtype=torch.long)

    with torch.inference_mode():
        cache = DynamicCache()
        logits = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
        if cache.get_seq_length() == 0:
            # A transformers before 5.24 takes `past_key_values`, ignores `cache` and would
            # decode every step without the prompt: stop instead of sampling noise.
            raise RuntimeError(
                "the model ignored the KV cache; distillery needs transformers>=5.24"
            )
        # One prefill per prompt, then its rows share it.
        row_prompt = torch.repeat_interleave(
            torch.arange(len(prompts)), torch.tensor(list(repeats))
        )
        if n_rows != len(prompts):
            cache.batch_select_indices(row_prompt.to(device))
            logits = logits[row_prompt.to(device)]
        mask = mask[row_prompt]
        next_pos = positions[row_prompt, -1] + 1
        alive = torch.arange(n_rows)  # original row index of each batch slot
        closed = torch.zeros(n_rows, dtype=torch.bool)  # slot has emitted its stop token
        for step in range(max_new_tokens):
            u = uniforms(row_keys[alive.numpy()], step)
            nxt = sample_next(logits, temperature, top_p, u).cpu()
            stopped = torch.isin(nxt, eos) & ~closed
            for row, tok, is_open, stop in zip(
                alive.tolist(), nxt.tolist(), (~closed).tolist(), stopped.tolist(), strict=True
            ):
                if stop:
                    finish[row] = "stop"
                elif is_open:
                    out_tokens[row].append(tok)
            if on_step is not None:
                on_step(int((~closed).sum()))
            check_interrupt()  # Ctrl-C: stop within a step, not at the end of the batch
            closed |= stopped
            if step == max_new_tokens - 1 or bool(closed.all()):
                break
            if bool(stopped.any()) and float(closed.float().mean()) >= COMPACT_FRACTION:
                keep = (~closed).nonzero().squeeze(-1)
                cache.batch_select_indices(keep.to(device))
                alive, nxt, mask = alive[keep], nxt[keep], mask[keep]
                next_pos, closed = next_pos[keep], closed[keep]
            # Closed rows that were not compacted away decode pad tokens nobody reads.
            nxt = torch.where(closed, torch.full_like(nxt, pad_id), nxt)
            mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=mask.dtype)], dim=1)
            logits = model(
                input_ids=nxt.unsqueeze(-1).to(device),
                attention_mask=mask.to(device),
                position_ids=next_pos.unsqueeze(-1).to(device),
                cache=cache,
                use_cache=True,
            ).logits[:, -1, :]
            next_pos = next_pos + 1
    return [RowResult(out_tokens[r], finish[r]) for r in range(n_rows)]
