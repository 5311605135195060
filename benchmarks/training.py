"""Training throughput: `distillery train rsft`'s launcher vs a bare TRL script, same rows.

In one process: the seed suite's reference answers (train split) as prompt/completion rows,
SmolLM2-135M, the same SFTConfig values; tokens/s = TRL's `num_tokens` over the time of
`trainer.train()`, alternating the two, median of the rounds. Usage:

    python benchmarks/training.py [--rows 64] [--steps 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillery.generators.model_registry import load, resolve
from distillery.tasks.suite_seeds import SeedsSuite
from distillery.trainers.rsft_trainer import RSFTLauncher
from distillery.trainers.train_config import RSFTConfig
from distillery.trainers.trl_run import quiet_libraries, trainer_device_args


def rows(n: int) -> list[dict]:
    out = []
    for p in SeedsSuite().prompts():
        if p.split == "train" and p.reference:
            out.append(
                {"prompt": p.chat, "completion": [{"role": "assistant", "content": p.reference}]}
            )
    step = max(1, len(out) // n)
    return out[::step][:n]


def bare_trl(data: list[dict], c: RSFTConfig, out_dir: str) -> tuple[int, float]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = load(resolve("smollm2-135m"), dtype=torch.float32)
    args = SFTConfig(
        output_dir=out_dir,
        learning_rate=c.learning_rate,
        max_steps=c.max_steps,
        per_device_train_batch_size=c.per_device_train_batch_size,
        max_length=c.max_length,
        seed=c.seed,
        logging_steps=1,
        completion_only_loss=True,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        activation_checkpointing=False,
        **trainer_device_args(),
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok
    )
    t = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t
    tokens = int(
        next(h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h)
    )
    return tokens, seconds


def distillery(data: list[dict], c: RSFTConfig, out_dir: str) -> tuple[int, float]:
    model, tok = load(resolve("smollm2-135m"), dtype=torch.float32)
    result = RSFTLauncher(c).train(model, tok, data, out_dir)
    return result.tokens, result.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    quiet_libraries()
    data = rows(args.rows)
    c = RSFTConfig(
        learning_rate=5e-5, max_steps=args.steps, per_device_train_batch_size=8, max_length=256
    )
    print(
        f"{len(data)} rows, {args.steps} steps of batch 8, SmolLM2-135M fp32, "
        f"{torch.get_num_threads()} threads"
    )
    rates: dict[str, list[float]] = {"distillery": [], "bare_trl": []}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.rounds):
            for fn in (distillery, bare_trl):
                tokens, secs = fn(data, c, d)
                rates[fn.__name__].append(tokens / secs)
                print(
                    f"  {fn.__name__:<10} {tokens} tokens {secs:6.1f}s {tokens / secs:7.1f} tok/s",
                    flush=True,
                )
    ours, bare = statistics.median(rates["distillery"]), statistics.median(rates["bare_trl"])
    print(
        f"distillery {ours:.1f} tok/s, bare TRL {bare:.1f} tok/s: ratio {ours / bare:.3f} "
        "(goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
