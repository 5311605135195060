"""Sampling tok/s at 1 thread, at every core, and at the measured (auto) count; idle and busy.

One process, the real model (SmolLM2-135M, bf16), the real sampler (`TransformersBackend.
generate`), the same prompts and parameters for every configuration. Rounds alternate the
order (1, all, auto / auto, all, 1 / ...) so a drift in the machine's load hits all alike;
medians are compared. `auto` measures afresh in each round, as a new process would, and
its measuring time is reported beside its sampling rate.

With `--load`, a second phase repeats the rounds while the benchmark keeps one busy-loop
process per core running: the busy host of issue 11. `--measurements N` first times N fresh
measurements per phase for sampling (the 256-row decode-step probe on the bf16 model) and
for training (forward + backward of 2 x 16 tokens on an fp32 copy): what auto costs a
process, once. `--rounds 0` runs only those. Usage:

    python benchmarks/threads.py [--prompts 4] [--k 8] [--max-new-tokens 16] [--rounds 3]
                                 [--measurements 0] [--load]

The defaults are small because two threads on a busy 2-core host sample at about 6 tok/s:
8 prompts x k=8 x 32 tokens took over 5 minutes a round for that configuration alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sampling import pick_prompts
from distillery.generators import threads
from distillery.generators.base import SampleRequest, SamplingParams
from distillery.generators.model_registry import load, resolve
from distillery.generators.sampler_transformers import TransformersBackend


@contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """`n` processes spinning in a pure-Python loop; stopped (only these) on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0)  # let them get scheduled before anything is timed
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def time_measurements(label: str, probes: dict[str, Callable[[], None]], n: int) -> None:
    """`n` fresh measurements per purpose, as `distillery sample` / `train` make them."""
    for purpose, probe in probes.items():
        for _ in range(n):
            threads._MEASURED.pop((os.getpid(), purpose), None)
            started = time.perf_counter()
            best, medians = threads.measured_threads(probe, purpose)
            print(
                f"  [{label}] {purpose} threads measured in {time.perf_counter() - started:.1f} s:"
                f" {threads.describe(best, medians)}",
                flush=True,
            )


def run_phase(
    label: str,
    backend: TransformersBackend,
    reqs: list[SampleRequest],
    params: SamplingParams,
    rounds: int,
    probes: dict[str, Callable[[], None]],
    measurements: int,
) -> dict[str, float] | None:
    print(f"\n[{label}] load average at start: {loadavg()}", flush=True)
    time_measurements(label, probes, measurements)
    if rounds < 1:
        return None
    cores = threads.usable_cores()
    names = ["1", str(cores), "auto"]
    rates: dict[str, list[float]] = {n: [] for n in names}
    choices: list[int] = []
    measure_s: list[float] = []
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            if name == "auto":
                # As a fresh process would: forget this process's earlier measurement.
                threads._MEASURED.pop((os.getpid(), "sampling"), None)
                probe = threads.sampling_probe(
                    backend._model, min(backend.batch_rows, threads.SAMPLING_PROBE_ROWS)
                )
                started = time.perf_counter()
                n, medians = threads.measured_threads(probe, "sampling")
                measure_s.append(time.perf_counter() - started)
                choices.append(n)
                note = f" (measured in {measure_s[-1]:.1f} s: {threads.describe(n, medians)})"
            else:
                n, note = int(name), ""
            backend.threads_used = n  # generate() sets torch's count from this
            started = time.perf_counter()
            tokens = sum(c.completion_tokens for b in backend.generate(reqs, params) for c in b)
            secs = time.perf_counter() - started
            rates[name].append(tokens / secs)
            print(
                f"  round {r} {name:>4} thr: {tokens} tokens {secs:6.1f} s "
                f"{tokens / secs:7.1f} tok/s{note}",
                flush=True,
            )
    med = {n: statistics.median(v) for n, v in rates.items()}
    print(f"[{label}] medians of {rounds}:", flush=True)
    for n in names:
        runs = ", ".join(f"{x:.1f}" for x in rates[n])
        print(f"  {n:>4} thr: {med[n]:7.1f} tok/s ({runs})")
    print(
        f"  auto chose {choices}, measuring took {statistics.median(measure_s):.1f} s (median); "
        f"auto / 1 thread {med['auto'] / med['1']:.2f}, "
        f"auto / {cores} threads {med['auto'] / med[str(cores)]:.2f}, "
        f"1 / {cores} threads {med['1'] / med[str(cores)]:.2f}",
        flush=True,
    )
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--measurements", type=int, default=0)
    ap.add_argument("--load", action="store_true", help="add a phase with one busy loop a core")
    args = ap.parse_args()
    # A plain `kill` then runs the `finally` that stops the busy loops.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    params = SamplingParams(n=args.k, max_new_tokens=args.max_new_tokens, seed=0)
    prompts = pick_prompts(args.prompts)
    reqs = [SampleRequest(p.prompt_id, p.messages, tuple(range(args.k))) for p in prompts]
    rows = len(prompts) * args.k
    default = torch.get_num_threads()
    # threads=1 opens it without measuring: each configuration sets its own. The default
    # batch_rows, so `auto` measures exactly as `distillery sample` does (a 256-row step).
    resolved = resolve("smollm2-135m")
    backend = TransformersBackend(resolved, dtype="bf16", threads=1)
    probes: dict[str, Callable[[], None]] = {}
    if args.measurements > 0:
        probes["sampling"] = threads.sampling_probe(backend._model)
        probes["training"] = threads.training_probe(load(resolved, dtype=torch.float32)[0])
    cores = threads.usable_cores()
    print(
        f"torch {torch.__version__}, {cores} usable cores (torch's default {default} threads), "
        f"{len(prompts)} prompts × k={args.k} = {rows} rows, max_new_tokens="
        f"{args.max_new_tokens}, bf16, {args.rounds} rounds"
    )
    list(backend.generate(reqs[:1], SamplingParams(n=2, max_new_tokens=4)))  # warm-up
    phase = (backend, reqs, params, args.rounds, probes, args.measurements)
    run_phase("no added load", *phase)
    if args.load:
        with busy_cores(cores):
            run_phase(f"+{cores} busy-loop processes", *phase)


if __name__ == "__main__":
    main()
