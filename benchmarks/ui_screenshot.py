"""Prove in a real browser that the Prefect UI shows distillery's flow runs and artifacts.

Starts a throwaway Prefect server, runs a tiny bake (tiny-random model, a 12-prompt regex
suite) through the `distillery` CLI against it, then renders UI pages in headless Chromium
and checks the rendered DOM:

  flow run page        /runs/flow-run/ID: the bake run's name, its flow `bake`, `Completed`
  artifacts page       /artifacts: the keys bake-summary, bake-pass-at-k, sample-*
  run's artifacts tab  /v2/runs/flow-run/ID?tab=Artifacts: the bake's own artifacts
                       (the V1 UI ignores `?tab=Artifacts` on a fresh load, see RUN_TAB_V1)
  bake-plots page      /artifacts/artifact/ID: `<img src="data:image/png;base64,...">`, i.e.
                       the plots embedded as data URIs in the markdown artifact render

and saves flow-run.png, flow-run-artifacts.png, artifacts.png and bake-plots.png. Selenium
is not a dependency, so the script drives the chromium binary (`--dump-dom`,
`--screenshot`) directly. Needs `chromium` on PATH; takes about two minutes. Usage:

    .venv/bin/python benchmarks/ui_screenshot.py --out DIR

Exits 1 with one `FAIL` line when a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import prefect_server

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "ui-screenshots"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
BAKE_ARGS = shlex.split(
    "--model tiny-random --suite vowels --name demo --k 4 --eval-n 4 --max-new-tokens 8 "
    "--max-steps 3 --lr 1e-3 --min-gain=-1 --max-family-drop 1 --shard-prompts 3"
)
# Rendering an SPA page needs its API calls to finish; retry with more virtual time
# before calling a missing string a failure (2 shared CPU cores can be slow).
BUDGETS_MS = (15_000, 45_000)
# The V1 UI hides the Artifacts tab until the flow run has loaded, and falls back to
# Logs meanwhile, so `?tab=Artifacts` is lost on a fresh page load; checked, not required.
RUN_TAB_V1 = "/runs/flow-run/{id}?tab=Artifacts"
V1_ACTIVE_TAB = re.compile(r'class="p-tab p-tab__active"[^>]*\sid="([\w-]+)"')
DATA_IMG = re.compile(r'<img[^>]*\ssrc="data:image/png;base64,')


class CheckFailed(Exception):
    """One UI check failed; the message is the script's one-line verdict."""


@dataclass
class Context:
    """What the checks need: where the server is and what the bake left behind."""

    base: str
    chromium: str
    out: Path
    tmp: Path
    flow_run_id: str = ""


# ------------------------------------------------------------------ server and bake


@contextmanager
def running_server(python: str, home: Path, port: int) -> Iterator[None]:
    proc = prefect_server.start(home, port, python)
    try:
        yield
    finally:
        prefect_server.stop(proc)


def write_suite(path: Path) -> None:
    rows = [
        {
            "prompt": f"say something {split} {i}",
            "family": "alpha" if i % 2 == 0 else "beta",
            "split": split,
            "verifier": {"kind": "regex", "pattern": "(?s).*[aeiou].*"},
        }
        for split, n in (("train", 8), ("test", 4))
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def cli(python: str, env: dict[str, str], *args: str) -> str:
    """Run `python -m flows.cli ARGS` from the repo root; its stdout, or fail with its error."""
    proc = subprocess.run(
        [python, "-m", "distillery.cli.app", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        err = " ".join((proc.stderr or proc.stdout).split())[-400:]
        raise CheckFailed(f"`distillery {args[0]}` exited {proc.returncode}: {err}")
    return proc.stdout


def run_bake(python: str, env: dict[str, str], tmp: Path, base: str) -> str:
    """Load the suite and bake; the bake's flow run id, parsed from its `flow run:` line."""
    suite, warehouse = tmp / "vowels.jsonl", str(tmp / "wh")
    write_suite(suite)
    cli(python, env, "prompts", "load", str(suite), "--warehouse", warehouse)
    stdout = cli(python, env, "bake", *BAKE_ARGS, "--warehouse", warehouse)
    ids = re.findall(rf"flow run: {re.escape(base)}/runs/flow-run/([0-9a-f-]{{36}})", stdout)
    if not ids:
        raise CheckFailed(f"no `flow run: {base}/runs/flow-run/<id>` line in the bake's output")
    return ids[-1]


# ------------------------------------------------------------------ REST look-ups


def flow_run(base: str, flow_run_id: str) -> dict:
    return httpx.get(f"{base}/api/flow_runs/{flow_run_id}", timeout=30).raise_for_status().json()


def artifact(base: str, key: str, flow_run_id: str) -> dict:
    """The newest artifact with `key` that this flow run made."""
    body = {
        "artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}},
        "sort": "CREATED_DESC",
        "limit": 1,
    }
    found = httpx.post(f"{base}/api/artifacts/filter", json=body, timeout=30)
    rows = found.raise_for_status().json()
    if not rows:
        raise CheckFailed(f"the bake run {flow_run_id} has no `{key}` artifact (REST filter)")
    return rows[0]


# ------------------------------------------------------------------ browser


def chromium(ctx: Context, budget_ms: int, size: str, *args: str) -> str:
    # A fresh profile per call: no state (UI preference, cache) carries between pages.
    profile = tempfile.mkdtemp(prefix="chrome-", dir=ctx.tmp)
    cmd = [
        ctx.chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        # Paint every frame under virtual time, so the PNG shows what the DOM holds.
        "--run-all-compositor-stages-before-draw",
        f"--user-data-dir={profile}",
        f"--window-size={size}",
        f"--virtual-time-budget={budget_ms}",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise CheckFailed(f"chromium exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def render(
    ctx: Context, path: str, needles: list[str], png: str | None = None, size: str = "1600,1200"
) -> str:
    """The page's rendered DOM, retried with more virtual time until all `needles` show.

    With `png`, the same page load is also screenshotted: the DOM checked is the one in
    the picture (a separate load could catch the SPA before its data arrived).
    """
    shot = [f"--screenshot={ctx.out / png}"] if png else []
    dom = ""
    for budget in BUDGETS_MS:
        dom = chromium(ctx, budget, size, "--dump-dom", *shot, ctx.base + path)
        if all(n in dom for n in needles):
            break
    if png and not (ctx.out / png).is_file():
        raise CheckFailed(f"chromium wrote no screenshot {png} of {path}")
    return dom


def text_of(dom: str) -> str:
    """The DOM's visible text, whitespace collapsed (for the summary)."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    dom = re.sub(r"data:[^\"')]+", "data:…", dom)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def require(dom: str, needles: list[str], page: str) -> None:
    missing = [n for n in needles if n not in dom]
    if missing:
        raise CheckFailed(f"{page}: missing {missing} in the rendered DOM: {text_of(dom)[:200]}")


# ------------------------------------------------------------------ checks


def check_flow_run(ctx: Context) -> str:
    run = flow_run(ctx.base, ctx.flow_run_id)
    if run["state_type"] != "COMPLETED":
        raise CheckFailed(f"bake flow run {run['name']} is {run['state_type']}, not COMPLETED")
    path = f"/runs/flow-run/{ctx.flow_run_id}"
    # The flow's name is a link label: `<span>bake</span>`, not just any "bake" substring.
    needles = [run["name"], "<span>bake</span>", "Completed"]
    require(render(ctx, path, needles, "flow-run.png"), needles, path)
    return f"{path}: run {run['name']!r}, flow 'bake', 'Completed'"


def check_artifacts_page(ctx: Context) -> str:
    needles = ["bake-summary", "bake-pass-at-k", "bake-plots"]
    dom = render(ctx, "/artifacts", [*needles, "sample-summary"], "artifacts.png")
    require(dom, needles, "/artifacts")
    sample = [k for k in ("sample-summary", "sample-progress") if k in dom]
    if not sample:
        raise CheckFailed("/artifacts: neither sample-summary nor sample-progress is listed")
    return f"/artifacts: {', '.join(needles + sample)} listed"


def check_run_artifacts_tab(ctx: Context) -> str:
    needles = ["bake-summary", "bake-pass-at-k", "bake-plots", "bake-plot-pass-at-k"]
    path = f"/v2/runs/flow-run/{ctx.flow_run_id}?tab=Artifacts"
    require(render(ctx, path, needles, "flow-run-artifacts.png"), needles, path)
    v1 = RUN_TAB_V1.format(id=ctx.flow_run_id)
    # Needle = the Artifacts tab being active, so a slow load gets the longer budget too.
    dom = render(ctx, v1, ['p-tab__active" tabindex="0" id="artifacts"'])
    active = V1_ACTIVE_TAB.search(dom)
    return f"{path}: {', '.join(needles)}; V1 {v1} opens tab {active and active[1]!r}"


def check_plots(ctx: Context) -> str:
    plots = artifact(ctx.base, "bake-plots", ctx.flow_run_id)
    embedded = plots["data"].count("](data:image/png;base64,")
    path = f"/artifacts/artifact/{plots['id']}"
    # Tall window: all four plots of the markdown fit in one screenshot.
    dom = render(ctx, path, ['src="data:image/png;base64,'], "bake-plots.png", "1600,2400")
    images = len(DATA_IMG.findall(dom))
    if not embedded or images < embedded:
        raise CheckFailed(
            f"{path}: {images} <img src=data:image/png> rendered of {embedded} in the markdown"
        )
    return f"{path}: {images} of {embedded} markdown data:image/png images render as <img>"


CHECKS = (check_flow_run, check_artifacts_page, check_run_artifacts_tab, check_plots)


# ------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the PNGs go")
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    ap.add_argument("--python", default=python, help="runs the server and the CLI")
    chromium = shutil.which("chromium") or "chromium"
    ap.add_argument("--chromium", default=chromium, help="the headless browser")
    return ap.parse_args()


def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    port = prefect_server.free_port()
    home = tmp / "prefect-home"
    env = {**prefect_server.server_env(home, port), "NO_COLOR": "1"}
    ctx = Context(f"http://127.0.0.1:{port}", args.chromium, args.out, tmp)
    with running_server(args.python, home, port):
        started = time.monotonic()
        ctx.flow_run_id = run_bake(args.python, env, tmp, ctx.base)
        lines = [f"bake {ctx.flow_run_id} in {time.monotonic() - started:.0f}s"]
        lines += [check(ctx) for check in CHECKS]
    return lines


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ui-screenshot-") as tmp:
        try:
            lines = run(args, Path(tmp))
        except (
            CheckFailed,
            prefect_server.PrefectServerError,
            subprocess.TimeoutExpired,
            httpx.HTTPError,
        ) as e:
            sys.exit(f"ui_screenshot: FAIL {e}")
    for line in lines:
        print(f"ok  {line}")
    pngs = ", ".join(sorted(p.name for p in args.out.glob("*.png")))
    print(f"screenshots in {args.out}: {pngs} ({time.monotonic() - started:.0f}s in all)")


if __name__ == "__main__":
    main()
