"""Prove in a real browser that the Prefect UI tells a bake's story without a terminal.

Starts a throwaway Prefect server on a port that is not Prefect's default 4200, with the UI
told to call that port (PREFECT_SERVER_UI_API_URL: `tests/prefect_server.py`), runs a tiny
bake (tiny-random model, a 12-prompt regex suite) through the `distillery` CLI against it,
registers the deployments (`distillery serve --paused`), then renders UI pages in headless
Chromium and checks the rendered DOM:

  port                 /ui-settings: the UI's API is http://127.0.0.1:PORT/api, PORT not 4200
  flow run page        /runs/flow-run/ID: the bake run's name, its flow `bake`, `Completed`
  artifacts page       /artifacts: the keys bake-summary, bake-pass-at-k, sample-*
  run's artifacts tab  /v2/runs/flow-run/ID?tab=Artifacts: the bake's own artifacts
                       (the V1 UI ignores `?tab=Artifacts` on a fresh load, see RUN_TAB_V1)
  bake-plots page      /artifacts/artifact/ID: `<img src="data:image/png;base64,...">`, i.e.
                       the plots embedded as data URIs in the markdown artifact render
  stage Logs tabs      /runs/flow-run/ID of the bake's verify and train-rsft runs: the
                       stage's own lines (the verify summary; `step i/3: loss ...` per
                       training step), logged by the stage's task run
  task runs            by REST, verify, train-rsft and eval runs have exactly their one task
                       run and a progress artifact at 100; in the browser, the eval run's
                       Task Runs tab (/v2/runs/flow-run/ID?tab=TaskRuns) lists its task run
  run form             /deployments/deployment/ID/run of eval/on-demand: a dropdown with the
                       choices of every Literal field (backend, dtype, split) and every
                       field's help line

and saves flow-run.png, artifacts.png, flow-run-artifacts.png, bake-plots.png,
verify-logs.png, train-logs.png, eval-task-runs.png and run-form.png. Selenium is not a
dependency, so the script drives the chromium binary (`--dump-dom`, `--screenshot`)
directly. Needs `chromium` on PATH (`apt-get install chromium`); takes about two
minutes. Usage:

    .venv/bin/python benchmarks/ui_screenshot.py [--out DIR] [--port PORT]

Exits 1 with one `FAIL` line when a check fails.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union

import httpx

from distillery.config.base import field_help
from distillery.evals.eval_config import EvalConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script, benchmarks/ is first on the path, not REPO

from tests import prefect_server  # noqa: E402 - the path comes first

DEFAULT_OUT = REPO / "benchmarks" / "ui-screenshots"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
BAKE_ARGS = shlex.split(
    "--model tiny-random --suite vowels --name demo --search plain --n 4 --eval-n 4 "
    "--max-new-tokens 8 --max-steps 3 --learning-rate 1e-3 --min-gain=-1 --max-family-drop 1 "
    "--shard-prompts 3"
)
# Rendering an SPA page needs its API calls to finish; retry with more virtual time
# before calling a missing string a failure (2 shared CPU cores can be slow).
BUDGETS_MS = (15_000, 45_000)
# The V1 UI hides the Artifacts tab until the flow run has loaded, and falls back to
# Logs meanwhile, so `?tab=Artifacts` is lost on a fresh page load; checked, not required.
RUN_TAB_V1 = "/runs/flow-run/{id}?tab=Artifacts"
V1_ACTIVE_TAB = re.compile(r'class="p-tab p-tab__active"[^>]*\sid="([\w-]+)"')
DATA_IMG = re.compile(r'<img[^>]*\ssrc="data:image/png;base64,')
PREFECT_DEFAULT_PORT = 4200
# Each stage that runs as a task run of its flow run: (flow, task, its progress artifact).
STAGE_TASKS = (
    ("verify", "verify", "verify-progress"),
    ("train-rsft", "train-rsft", "training-progress"),
    ("eval", "eval", "eval-progress"),
)
FORM = ("eval", "on-demand", EvalConfig)  # the deployment whose run form is checked
VERIFY_SUMMARY = re.compile(r"\d+ samples: \d+ already verified, \d+ verdicts written")


class CheckFailed(Exception):
    """One UI check failed; the message is the script's one-line verdict."""


@dataclass
class Context:
    """What the checks need: where the server is and what the bake left behind."""

    base: str
    chromium: str
    out: Path
    tmp: Path
    python: str
    env: dict[str, str]
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


@contextmanager
def serving(ctx: Context) -> Iterator[None]:
    """`distillery serve --paused` until it has registered the deployments (then stopped)."""
    flow, name, _ = FORM
    args = ["serve", "--paused", "--model", "tiny-random", "--warehouse", str(ctx.tmp / "wh")]
    with open(ctx.tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [ctx.python, "-m", "distillery.cli.app", *args],
            cwd=REPO,
            env=ctx.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopping it stops what it started
        )
    try:
        deadline = time.monotonic() + 300
        while httpx.get(f"{ctx.base}/api/deployments/name/{flow}/{name}").status_code != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (ctx.tmp / "serve.log").read_text()[-300:]
                raise CheckFailed(f"`distillery serve` registered no {flow}/{name}: {tail}")
            time.sleep(1)
        yield
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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


def api(base: str, path: str, body: dict | None = None) -> Any:
    """GET (or, with a body, POST) /api/PATH; the parsed JSON."""
    url = f"{base}/api/{path}"
    r = httpx.get(url, timeout=30) if body is None else httpx.post(url, json=body, timeout=30)
    return r.raise_for_status().json()


def flow_run(base: str, flow_run_id: str) -> dict:
    return api(base, f"flow_runs/{flow_run_id}")


def stage_run(base: str, parent_id: str, flow: str) -> dict:
    """The first child flow run of `parent_id` (a stage of the bake) of the flow `flow`."""
    body = {
        "flows": {"name": {"any_": [flow]}},
        "flow_runs": {"parent_flow_run_id": {"any_": [parent_id]}},
        "sort": "START_TIME_ASC",
        "limit": 1,
    }
    rows = api(base, "flow_runs/filter", body)
    if not rows:
        raise CheckFailed(f"the bake run {parent_id} has no `{flow}` child flow run")
    return rows[0]


def task_runs(base: str, flow_run_id: str) -> list[dict]:
    return api(base, "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})


def log_lines(base: str, flow_run_id: str) -> list[str]:
    """The messages in a flow run's Logs tab (its task runs' included), oldest first."""
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"}
    return [row["message"] for row in api(base, "logs/filter", body)]


def artifact(base: str, key: str, flow_run_id: str) -> dict:
    """The newest artifact with `key` that this flow run (or one of its tasks) made."""
    body = {
        "artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}},
        "sort": "CREATED_DESC",
        "limit": 1,
    }
    rows = api(base, "artifacts/filter", body)
    if not rows:
        raise CheckFailed(f"the flow run {flow_run_id} has no `{key}` artifact (REST filter)")
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


def squeezed(text: str) -> str:
    """Text without whitespace or backticks: a help line as markdown and as rendered text
    (`code` becomes a <code> element, a URL a link) compare equal."""
    return re.sub(r"[\s`]+", "", html.unescape(text))


def literal_fields(cls: type) -> dict[str, tuple[Any, ...]]:
    """The choices of each `Literal` field of a config (`Literal[...] | None` included)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        union = typing.get_origin(hint) in (Union, UnionType)
        for arg in typing.get_args(hint) if union else (hint,):
            if typing.get_origin(arg) is Literal:
                out[name] = typing.get_args(arg)
    return out


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


def check_port(ctx: Context) -> str:
    port = int(ctx.base.rsplit(":", 1)[1])
    if port == PREFECT_DEFAULT_PORT:
        raise CheckFailed(f"the server is on Prefect's default port {port}; pick another")
    settings = httpx.get(f"{ctx.base}/ui-settings", timeout=30).raise_for_status().json()
    if settings["api_url"] != f"{ctx.base}/api":
        raise CheckFailed(f"/ui-settings: the UI calls {settings['api_url']}, not {ctx.base}/api")
    return f"/ui-settings: the UI calls {settings['api_url']} (port {port}, not 4200)"


def one_task_run(ctx: Context, run: dict, task: str) -> str:
    """The name of the run's one task run, which must be `task` and Completed."""
    found = [(t["name"], t["state_type"]) for t in task_runs(ctx.base, run["id"])]
    if [(n.rsplit("-", 1)[0], s) for n, s in found] != [(task, "COMPLETED")]:
        raise CheckFailed(f"{run['name']}: task runs {found}, not one completed `{task}`")
    return found[0][0]


def check_stage_logs(ctx: Context) -> str:
    said = []
    verify = stage_run(ctx.base, ctx.flow_run_id, "verify")
    summary = [x for x in log_lines(ctx.base, verify["id"]) if VERIFY_SUMMARY.match(x)]
    if not summary:
        raise CheckFailed(f"{verify['name']}: no verify summary line in its logs (REST)")
    train = stage_run(ctx.base, ctx.flow_run_id, "train-rsft")
    out = train["parameters"]["config"]["out"]
    for run, task, lines, png in (
        (verify, "verify", summary[:1], "verify-logs.png"),
        (
            train,
            "train-rsft",
            ["step 1/3: loss", "step 3/3: loss", f"registered {out}"],
            "train-logs.png",
        ),
    ):
        # The Logs tab shows the task run's name beside each line: the stage's task logged it.
        needles = [run["name"], "1 Task run", one_task_run(ctx, run, task), *lines]
        path = f"/runs/flow-run/{run['id']}"
        require(render(ctx, path, needles, png), needles, path)
        said.append(f"{path} ({run['name']}): {', '.join(repr(x) for x in lines)}")
    return "; ".join(said)


def check_task_runs(ctx: Context) -> str:
    said = []
    for flow, task, progress in STAGE_TASKS:
        run = stage_run(ctx.base, ctx.flow_run_id, flow)
        name = one_task_run(ctx, run, task)
        bar = artifact(ctx.base, progress, run["id"])
        if bar["data"] != 100.0:
            raise CheckFailed(f"{run['name']}: {progress} ended at {bar['data']}, not 100")
        said.append(f"{flow}: task run {name}, {progress} 100")
        if flow == "eval":
            path = f"/v2/runs/flow-run/{run['id']}?tab=TaskRuns"
            needles = [run["name"], "1 Task run", name, "Completed"]
            require(render(ctx, path, needles, "eval-task-runs.png"), needles, path)
            said.append(f"{path} lists {name}")
    return "; ".join(said)


def check_run_form(ctx: Context) -> str:
    flow, name, config = FORM
    with serving(ctx):
        deployment = api(ctx.base, f"deployments/name/{flow}/{name}")
    path = f"/deployments/deployment/{deployment['id']}/run"
    helps = field_help(config)
    choices = literal_fields(config)
    # A dropdown per Literal field: a <select> with an <option> per choice.
    options = [f'value="{c}">{c}</option>' for cs in choices.values() for c in cs if c]
    # Tall window: every field of the form fits in one screenshot.
    dom = render(ctx, path, options, "run-form.png", "1600,3400")
    require(dom, options, path)
    text = squeezed(text_of(dom))
    missing = [f for f, h in helps.items() if squeezed(h) not in text]
    if missing:
        raise CheckFailed(f"{path}: no help line for {missing}")
    dropdowns = ", ".join(f"{f} ({'|'.join(str(c) for c in cs)})" for f, cs in choices.items())
    return f"{path} ({flow}/{name}): dropdowns {dropdowns}; help lines {len(helps)}/{len(helps)}"


CHECKS = (
    check_port,
    check_flow_run,
    check_artifacts_page,
    check_run_artifacts_tab,
    check_plots,
    check_stage_logs,
    check_task_runs,
    check_run_form,
)


# ------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the PNGs go")
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    ap.add_argument("--python", default=python, help="runs the server and the CLI")
    chromium = shutil.which("chromium") or "chromium"
    ap.add_argument("--chromium", default=chromium, help="the headless browser")
    ap.add_argument("--port", type=int, help="the server's port (default: a free one; never 4200)")
    return ap.parse_args()


def run(args: argparse.Namespace, tmp: Path) -> list[str]:
    port = args.port or prefect_server.free_port()
    if port == PREFECT_DEFAULT_PORT:
        raise CheckFailed(f"--port {port} is Prefect's default; the point is another port")
    home = tmp / "prefect-home"
    env = {**prefect_server.server_env(home, port), "NO_COLOR": "1"}
    ctx = Context(f"http://127.0.0.1:{port}", args.chromium, args.out, tmp, args.python, env)
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
