"""What a stage command costs on top of its work: the local server against Prefect's
temporary server per command, alternating, in one run.

    .venv/bin/python benchmarks/cli_latency.py [--repeats 2]

Each command runs as a user runs it (`distillery ...` in a fresh process) on a small
warehouse, with no PREFECT_API_URL: once with the local server (started before the first
timed call and reused, `flows/local_server.py`) and once with `DISTILLERY_LOCAL_SERVER=0`
(Prefect starts a temporary server inside the command). Commands whose work is nothing or
a rejected input show the fixed cost alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DISTILLERY = [sys.executable, "-m", "distillery.cli.app"]


def _suite(path: Path) -> Path:
    rows = [
        {"prompt": f"say a word {i}", "family": "w", "split": "train",
         "verifier": {"kind": "regex", "pattern": "(?s).*"}}
        for i in range(4)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wh = str(tmp / "wh")
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base |= {"PREFECT_HOME": str(tmp / "profile"), "DISTILLERY_SERVER_HOME": str(tmp / "srv")}
        modes = {"local server": base, "temporary server": base | {"DISTILLERY_LOCAL_SERVER": "0"}}
        suite = str(_suite(tmp / "words.jsonl"))
        commands = {
            "--help": ["--help"],
            "bad input (sample --n 0)": ["sample", "--n", "0", "--warehouse", wh],
            "sql SELECT 1": ["sql", "SELECT 1", "--warehouse", wh],
            "prompts load (4 prompts)": ["prompts", "load", suite, "--warehouse", wh],
            "verify (nothing new)": ["verify", "--warehouse", wh],
        }

        def run(cmd: list[str], env: dict[str, str]) -> float:
            t = time.perf_counter()
            r = subprocess.run([*DISTILLERY, *cmd], cwd=ROOT, env=env, capture_output=True)
            if r.returncode not in (0, 1):
                raise SystemExit(f"{cmd}: exit {r.returncode}\n{r.stderr.decode()[-2000:]}")
            return time.perf_counter() - t

        t = time.perf_counter()
        run(["prompts", "load", suite, "--warehouse", wh], modes["local server"])
        console.print(
            f"local server started and first command done in {time.perf_counter() - t:.1f} s"
        )
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                for mode, env in modes.items():  # alternate: drift hits both alike
                    times.setdefault((name, mode), []).append(run(cmd, env))
        subprocess.run([*DISTILLERY, "server", "stop"], cwd=ROOT, env=base, capture_output=True)
    table = Table(
        "command", *modes, "ratio", title=f"wall seconds per command (median of {args.repeats})"
    )
    for name in commands:
        med = [statistics.median(times[(name, m)]) for m in modes]
        table.add_row(name, *(f"{x:.2f}" for x in med), f"{med[1] / med[0]:.1f}x")
    console.print(table)


if __name__ == "__main__":
    main()
