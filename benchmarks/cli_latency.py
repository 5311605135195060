"""What a stage command costs on top of its work: each command against its plain function,
optionally beside another checkout's code or Prefect's temporary server, alternating.

    .venv/bin/python benchmarks/cli_latency.py [--repeats 5] [--before DIR] [--temporary]

Each command runs as a user runs it (`distillery ...` in a fresh process) on a small
warehouse, with no PREFECT_API_URL, so it uses the local server (`flows/local_server.py`),
started before the first timed call and reused. The "plain" rows run the same work as
`prompts load seeds` and `verify` without Prefect (the stage function, in a fresh
process): a command's fixed cost is its time less its plain row's (issue 14's goal: ≤ 2 s).

`--before DIR`: the code of another checkout (e.g. `git worktree add /tmp/before HEAD`)
runs every row too, with this venv, on a warehouse of its own, alternating with this
tree's. `--temporary`: also `DISTILLERY_LOCAL_SERVER=0`, Prefect's temporary server inside
each command (20-60 s a command).
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
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DISTILLERY = [sys.executable, "-m", "distillery.cli.app"]

# The stages' plain functions, as `prompts load seeds` and `verify` call them in their flows.
PLAIN_LOAD = """
import io, sys
from pathlib import Path
from rich.console import Console
from distillery.tasks.prompts_stage import prompts_job
prompts_job("seeds", None, Path(sys.argv[1]), Console(file=io.StringIO()))
"""
PLAIN_VERIFY = """
import io, sys
from pathlib import Path
from rich.console import Console
from distillery.filters.verify_config import VerifyConfig
from distillery.filters.verify_stage import verify_stage
verify_stage(VerifyConfig(), Path(sys.argv[1]), Console(file=io.StringIO()), lambda d, t: None)
"""


def _suite(path: Path) -> Path:
    rows = [
        {"prompt": f"say a word {i}", "family": "w", "split": "train",
         "verifier": {"kind": "regex", "pattern": "(?s).*"}}
        for i in range(4)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _package_path(checkout: Path, into: Path) -> str:
    """A PYTHONPATH entry whose `distillery` package is `checkout`'s folders: found before
    the editable install of this tree, which Python asks last."""
    pkg = into / "distillery"
    pkg.mkdir(parents=True)
    for folder in checkout.iterdir():
        if (folder / "__init__.py").is_file() and folder.name not in ("tests", "benchmarks"):
            (pkg / folder.name).symlink_to(folder.resolve())
    return str(into)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another checkout, timed beside this tree")
    ap.add_argument("--temporary", action="store_true", help="also Prefect's temporary server")
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base |= {"PREFECT_HOME": str(tmp / "profile"), "DISTILLERY_SERVER_HOME": str(tmp / "srv")}
        base.pop("PYTHONPATH", None)
        modes = {"this tree": base}
        if args.before is not None:
            shim = _package_path(args.before, tmp / "before-path")
            modes[f"before ({args.before})"] = base | {"PYTHONPATH": shim}
        if args.temporary:
            modes["temporary server"] = base | {"DISTILLERY_LOCAL_SERVER": "0"}
        suite = str(_suite(tmp / "words.jsonl"))
        # Each code tree writes its own warehouse (their layouts may differ).
        whs = {mode: str(tmp / f"wh{i}") for i, mode in enumerate(modes)}
        whs["temporary server"] = whs["this tree"]
        commands = {
            "--help": lambda wh: ["--help"],
            "bad input (sample --n 0)": lambda wh: ["sample", "--n", "0", "--warehouse", wh],
            "sql SELECT 1": lambda wh: ["sql", "SELECT 1", "--warehouse", wh],
            "prompts load (4 prompts)": lambda wh: ["prompts", "load", suite, "--warehouse", wh],
            "prompts load seeds": lambda wh: ["prompts", "load", "seeds", "--warehouse", wh],
            "verify (nothing new)": lambda wh: ["verify", "--warehouse", wh],
            "plain: prompts load seeds": lambda wh: ["-c", PLAIN_LOAD, wh],
            "plain: verify": lambda wh: ["-c", PLAIN_VERIFY, wh],
        }

        def run(cmd: list[str], env: dict[str, str]) -> float:
            argv = [sys.executable, *cmd] if cmd[0] == "-c" else [*DISTILLERY, *cmd]
            t = time.perf_counter()
            r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True)
            if (r.returncode == 0) == ("--n" in cmd):  # only the bad input is to fail
                raise SystemExit(f"{cmd}: exit {r.returncode}\n{r.stderr.decode()[-2000:]}")
            return time.perf_counter() - t

        t = time.perf_counter()
        for mode, env in modes.items():
            if mode != "temporary server":
                _setup(run, env, whs[mode], suite)
        console.print(
            f"local server started and warehouses set up in {time.perf_counter() - t:.1f} s"
        )
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                for mode, env in modes.items():  # alternate: drift hits every mode alike
                    if mode == "temporary server" and name.startswith("plain"):
                        continue
                    times.setdefault((name, mode), []).append(run(cmd(whs[mode]), env))
        subprocess.run([*DISTILLERY, "server", "stop"], cwd=ROOT, env=base, capture_output=True)
    _report(console, times, list(commands), list(modes), args.repeats)


def _setup(run: Callable[..., float], env: dict[str, str], wh: str, suite: str) -> None:
    """Prompts loaded (the 4-prompt suite and seeds), 4 samples imported and verified: the
    timed loads and verify then find nothing new."""
    run(["prompts", "load", suite, "--warehouse", wh], env)
    run(["prompts", "load", "seeds", "--warehouse", wh], env)
    out = subprocess.run(
        [*DISTILLERY, "sql", "SELECT prompt_id FROM prompts WHERE suite = 'words'",
         "--format", "json", "--warehouse", wh],
        cwd=ROOT, env=env, capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = Path(wh).with_suffix(".samples.jsonl")
    samples.write_text(
        "".join(json.dumps({"prompt_id": r["prompt_id"], "text": "a word"}) + "\n"
                for r in json.loads(out))
    )  # fmt: skip
    run(["samples", "import", str(samples), "--model-name", "elsewhere", "--warehouse", wh], env)
    run(["verify", "--warehouse", wh], env)


def _report(
    console: Console,
    times: dict[tuple[str, str], list[float]],
    commands: list[str],
    modes: list[str],
    repeats: int,
) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    table = Table("command", *modes, title=f"wall seconds per command (median of {repeats})")
    for name in commands:
        table.add_row(name, *(f"{med[(name, m)]:.2f}" if (name, m) in med else "" for m in modes))
    for cmd, plain in (("prompts load seeds", "plain: prompts load seeds"),
                       ("verify (nothing new)", "plain: verify")):  # fmt: skip
        table.add_row(
            f"fixed cost: {cmd} - plain",
            *(f"{med[(cmd, m)] - med[(plain, m)]:.2f}" if (plain, m) in med else "" for m in modes),
            style="bold",
        )
    console.print(table)
    if len(modes) > 1 and modes[1].startswith("before"):
        console.print("ratio before/this tree: " + ", ".join(
            f"{n} {med[(n, modes[1])] / med[(n, modes[0])]:.2f}x" for n in commands
        ))  # fmt: skip


if __name__ == "__main__":
    main()
