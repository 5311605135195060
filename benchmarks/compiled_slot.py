"""What compiling the sandbox's per-program Python would save: a measurement, not a feature.

Builds `benchmarks/prototypes/compiled_slot.c` (a CPython extension: the slot server's
clone-and-reap loop, and the program's set-up) with the system's C compiler, patches it
into two throwaway `git worktree`s of HEAD (`compiled_slot.patch`: the loop only, and the
loop plus the set-up), and runs HumanEval's 164 canonical solutions through three sandboxes
in one process (this checkout's, and one zygote from each worktree; the parent's side is
the same code), in rotating order, round by round. Reports throughput and CPU a program
(all of the machine's, from /proc/stat) for each, as ratios to this checkout's. Needs root
(namespaces) and gcc, like the sandbox it measures. Usage:

    python benchmarks/compiled_slot.py [--rounds 10] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillery.filters.registry import Verifiers
from distillery.filters.sandbox import runner
from distillery.tasks.suite_humaneval import HumanEvalSuite

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "benchmarks" / "prototypes"


def build(out: Path) -> None:
    name = "_cslot" + sysconfig.get_config_var("EXT_SUFFIX")
    include = sysconfig.get_paths()["include"]
    cmd = ["gcc", "-O2", "-Wall", "-shared", "-fPIC", f"-I{include}"]
    subprocess.run([*cmd, str(PROTO / "compiled_slot.c"), "-o", str(out / name)], check=True)


def worktree(at: Path, patch: str, only: str | None) -> None:
    add = ["git", "-C", str(ROOT), "worktree", "add", "-f", "-q", str(at), "HEAD"]
    subprocess.run(add, check=True)
    cmd = ["git", "-C", str(at), "apply", *([f"--include={only}"] if only else []), "-"]
    subprocess.run(cmd, input=patch, text=True, check=True)


def busy_ticks() -> int:
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # all but idle and iowait


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2 * (os.cpu_count() or 1))
    args = ap.parse_args()
    prompts = HumanEvalSuite().prompts()
    items = [(json.loads(p.verifier), "```python\n" + p.reference + "\n```") for p in prompts]
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="compiled-slot-") as tmp:
        build(Path(tmp))
        patch = (PROTO / "compiled_slot.patch").read_text().replace("@CSLOT_DIR@", tmp)
        variants = {"python (HEAD)": str(ROOT)}
        trees = []
        for name, only in (("compiled loop", "filters/sandbox/zygote.py"), ("+ set-up", None)):
            at = Path(tmp) / name.replace(" ", "-").replace("+", "plus")
            worktree(at, patch, only)
            trees.append(at)
            variants[name] = str(at)
        try:
            sandboxes = {}
            for name, package in variants.items():
                runner.PACKAGE_DIR = package  # where the next sandbox's zygote is loaded from
                sandboxes[name] = Verifiers(workers=args.threads)
                _ = sandboxes[name].sandbox
            rates = {n: [] for n in variants}
            cpu = {n: [] for n in variants}
            names = list(variants)
            with ThreadPoolExecutor(args.threads) as pool:
                for name, v in sandboxes.items():  # warm each, and check all pass
                    verdicts = list(pool.map(lambda it, v=v: v.verify(*it), items))
                    assert all(x.passed for x in verdicts), name
                for i in range(args.rounds):
                    for name in names[i % 3 :] + names[: i % 3]:
                        v = sandboxes[name]
                        b0, t0 = busy_ticks(), time.perf_counter()
                        verdicts = list(pool.map(lambda it, v=v: v.verify(*it), items))
                        secs, ticks = time.perf_counter() - t0, busy_ticks() - b0
                        assert all(x.passed for x in verdicts), name
                        rates[name].append(len(items) / secs)
                        cpu[name].append(ticks * tick_ms / len(items))
            for v in sandboxes.values():
                v.sandbox.close()
        finally:
            for at in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(at)])
    base_rate = statistics.median(rates[names[0]])
    base_cpu = statistics.median(cpu[names[0]])
    print(f"{len(items)} programs a round, {args.threads} threads, {args.rounds} rounds each")
    for name in names:
        rate, ms = statistics.median(rates[name]), statistics.median(cpu[name])
        print(
            f"{name:14s} {rate:6.1f} programs/s ({rate / base_rate:.3f}x)  "
            f"{ms:.2f} ms CPU a program ({ms / base_cpu:.3f}x)"
        )


if __name__ == "__main__":
    main()
