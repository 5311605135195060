"""Prefect's orchestration overhead: a small bake through Prefect vs the same steps as plain calls.

In one process, against one real `prefect server start` (SQLite, temporary PREFECT_HOME):
  prefect  `flows.bake_flow.bake_flow` through `flows.runtime.run_flow`, as `distillery bake`
           runs it: a flow run per stage, sampling sharded into thread-pool tasks, artifacts,
           logs and events sent to the API (drained before the clock stops)
  plain    `plain_bake` below: the same stage functions in the same order, no Prefect call,
           sampling every selected prompt in one `run_sampling` (no shards)
Both run one `flows.bake_config.BakeConfig` (`--method rsft --search plain`: n bare draws per
train prompt, verify, select, train RSFT, eval parent and child, gate, report), projected
onto each stage's config as `bake_flow` does, and start from a fresh warehouse holding the
same generated `vowels` suite (a regex verifier: a vowel anywhere), so they do identical
work; the script asserts equal row counts.
Repeats alternate which path goes first so drift on a shared machine cancels; each path gets
one untimed warm-up on a tiny config first (imports, first model load, Prefect client).
Overhead = (median prefect − median plain) / median plain; the goal is ≤ 10 %. Usage:

    .venv/bin/python benchmarks/orchestration.py [--rounds 1] [--n 8] [--repeats 3] [--out F]

(`--k` is the former name of `--n`, kept so that older commands still run.)

`--no-heartbeats` runs the Prefect path with flow-run heartbeats off, to see what Prefect
3.8's heartbeat thread costs (it is joined, up to a second, at the end of every flow run).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import prefect_server  # noqa: E402 - imports no Prefect; the path comes first

if TYPE_CHECKING:
    from distillery.flows.bake_config import BakeConfig

SUITE = "vowels"
SPEC = {"kind": "regex", "pattern": "(?s).*[aeiou].*"}
STAGES = ("sample", "verify", "select", "pairs", "train", "eval", "promote", "report")
# Tables both paths must fill identically for the comparison to be fair.
COUNTED = (
    "samples",
    "verdicts",
    "selections",
    "evals",
    "promotions",
    "training_jobs",
    "models",
    "runs",
)
GOAL_PCT = 10.0
# The bake_flow globals that are stage flows; wrapped (not changed) to time each stage.
STAGE_FLOWS = {
    "sample_flow": "sample",
    "verify_flow": "verify",
    "select_flow": "select",
    "pairs_flow": "pairs",
    "rsft_flow": "train",
    "eval_flow": "eval",
    "promote_flow": "promote",
    "report_flow": "report",
}


@dataclass(frozen=True)
class BenchConfig:
    """What the command line sets; `bake()` is the `BakeConfig` both paths run."""

    model: str
    rounds: int
    n: int
    eval_n: int
    max_new_tokens: int
    max_steps: int
    name: str = "bench"
    learning_rate: float = 1e-3
    # Always promote (a child not worse by 100 points): every round does the same work on
    # both paths.
    min_gain: float = -1.0
    max_family_drop: float = 1.0
    shard_prompts: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0
    dtype: str = "bf16"
    # Prefect 3.8's flow-run heartbeat thread sleeps in whole seconds and is joined when
    # each flow run ends; --no-heartbeats measures the bake without it (a diagnosis).
    heartbeats: bool = True

    def bake(self) -> BakeConfig:
        """The bake's config: every field above but `heartbeats`, under the same name."""
        from distillery.flows.bake_config import BakeConfig

        values = asdict(self)
        del values["heartbeats"]
        return BakeConfig(suite=SUITE, method="rsft", search="plain", **values)


@dataclass
class RunResult:
    path: str
    repeat: int
    seconds: float
    stages: dict[str, float]
    counts: dict[str, int]
    passed: int
    final: str
    diagnostics: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ the Prefect server


def serve_prefect() -> float:
    """Start the server and point this process at it; returns the start-up seconds.

    Must run before anything imports Prefect: its settings are read on first import.
    """
    home = Path(tempfile.mkdtemp(prefix="distillery-bench-prefect-"))
    started = time.perf_counter()
    proc = prefect_server.start(home, port := prefect_server.free_port())
    # Registered before Prefect is imported, so it runs after Prefect's own exit hooks
    # (atexit is last-in, first-out) and their last log/event sends still find a server.
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    atexit.register(prefect_server.stop, proc)
    os.environ.update(prefect_server.server_env(home, port))
    return time.perf_counter() - started


# ------------------------------------------------------------------ suite and warehouse


def write_suite(directory: Path, train: int, test: int) -> Path:
    """A vowels-style JSONL suite; the file's stem is the suite's name."""
    rows = [
        {
            "prompt": f"{'say something' if split == 'train' else 'held-out'} {i}",
            "family": "alpha" if i % 2 else "beta",
            "split": split,
            "verifier": SPEC,
        }
        for split, n in (("train", train), ("test", test))
        for i in range(n)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{SUITE}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fresh_warehouse(root: Path, suite_file: Path, console: Console) -> Path:
    """A new warehouse with the suite loaded (outside the timed region)."""
    from distillery.tasks.prompts_stage import prompts_job

    if root.exists():
        shutil.rmtree(root)
    loaded = prompts_job(str(suite_file), None, root, console)
    assert loaded.suite == SUITE, loaded.suite
    return root


def warehouse_counts(root: Path) -> tuple[dict[str, int], int]:
    """Rows per counted table, and how many verdicts passed (a check, not asserted)."""
    from distillery.warehouse.store import Warehouse

    wh = Warehouse.open_existing(root)
    counts = {t: int(wh.query(f"SELECT count(*) FROM {t}")[0][0]) for t in COUNTED}
    passed = int(wh.query("SELECT count(*) FROM verdicts WHERE passed")[0][0])
    return counts, passed


# ------------------------------------------------------------------ timing helpers


class Stopwatch:
    """Seconds per stage name, summed over rounds (eval runs twice a round)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


@contextlib.contextmanager
def patched(module: Any, attr: str, value: Any) -> Iterator[None]:
    """Swap a module global for the duration (the flows look their globals up per call)."""
    old = getattr(module, attr)
    setattr(module, attr, value)
    try:
        yield
    finally:
        setattr(module, attr, old)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    # The flows print through their own Console(), which writes to whatever sys.stdout is
    # at print time; both paths send their rich output to /dev/null this way.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


# ------------------------------------------------------------------ the two paths


def plain_bake(bench: BenchConfig, root: Path, console: Console, watch: Stopwatch) -> str:
    """bake_flow's steps for `--method rsft --search plain` as plain calls in this process,
    each stage's config projected from the bake's as bake_flow does; returns the final
    model's name."""
    from distillery.config.base import project
    from distillery.config.groups import BackendChoice, Decoding, Sharding
    from distillery.console.progress import sampling_bar
    from distillery.curate.select_config import SelectConfig
    from distillery.curate.select_stage import select_stage
    from distillery.evals.eval_config import EvalConfig
    from distillery.evals.eval_stage import eval_stage, params_identity
    from distillery.evals.gate import gate
    from distillery.evals.gate_config import GateConfig, PromoteConfig
    from distillery.evals.report import write_report
    from distillery.evals.report_config import ReportConfig
    from distillery.filters.verify_config import VerifyConfig
    from distillery.filters.verify_stage import verify_stage
    from distillery.generators import model_store
    from distillery.generators.base import SamplingParams
    from distillery.generators.sample_config import SampleConfig
    from distillery.generators.sample_stage import open_backend, print_summary, sampling_params
    from distillery.generators.sampling import Drawing, run_sampling, select_prompts
    from distillery.trainers.train_config import RSFTConfig, TrainArgs
    from distillery.trainers.train_stage import train_stage
    from distillery.warehouse.runs import recorded_run
    from distillery.warehouse.store import Warehouse

    c = bench.bake()
    wh = Warehouse.open(root)
    # As bake_flow: each stage's config is the bake's fields under the same names.
    decoding = project(c, Decoding).as_params()
    backend = project(c, BackendChoice).as_params()
    train_args = {
        f.name: getattr(c, f.name) for f in fields(TrainArgs) if getattr(c, f.name) is not None
    }
    scope = {"suite": c.suite, "split": "train", "limit": c.limit, "per_family": c.per_family}
    ks = tuple(sorted({1, c.eval_n}))
    current = c.model
    last = c.model
    with recorded_run(wh, "bake", c.as_params()):
        for r in range(1, c.rounds + 1):
            out = f"{c.name}-r{r}"
            with watch.stage("sample"):
                job = SampleConfig(model=current, n=c.n, **scope, **decoding, **backend)
                params = sampling_params(job)
                prompts = select_prompts(wh, job.suite, job.split, job.limit, job.per_family)
                model, sampler = open_backend(wh, console, current, project(job, BackendChoice))
                # The run parameters the sample flow records (it shards; this path does not).
                run_params = {**job.as_params(), **project(c, Sharding).as_params()}
                try:
                    with (
                        recorded_run(wh, "sample", run_params) as run_id,
                        sampling_bar(console, f"sampling {model.name}") as (set_total, advance),
                    ):
                        model_store.register(wh, model, run_id)
                        summary = run_sampling(
                            Drawing(wh, sampler, model, run_id, advance),
                            prompts,
                            params,
                            on_plan=set_total,
                        )
                finally:
                    sampler.close()
                print_summary(console, job, summary)
            with watch.stage("verify"):
                verify_stage(VerifyConfig(c.suite, current, "train"), root, console)
            with watch.stage("select"):
                select_stage(SelectConfig(suite=c.suite, model=current), root, console)
            # bake_flow's resume check (_trained) runs outside its train stage, too.
            if model_store.model_row(wh, out) is not None:
                raise RuntimeError(f"{out} exists in a warehouse that should be fresh")
            with watch.stage("train"):
                data = {"base": current, "out": out, "suite": c.suite, "samples_of": current}
                train_stage(RSFTConfig(**data, **train_args), root, console)
            for who in (current, out):
                with watch.stage("eval"):
                    eval_config = EvalConfig(
                        model=who,
                        suite=c.suite,
                        split="test",
                        n=c.eval_n,
                        k=ks,
                        per_family=c.eval_per_family,
                        **decoding,
                        **backend,
                    )
                    eval_stage(eval_config, root, console)
            with watch.stage("promote"):
                # promote_flow's body: the eval's sampling identity from the config, then
                # the gate in a recorded run.
                p = PromoteConfig(
                    model=out,
                    parent=current,
                    suite=c.suite,
                    split="test",
                    n=c.eval_n,
                    **project(c, GateConfig).as_params(),
                    **decoding,
                )
                identity = params_identity(SamplingParams.of(p, p.n))
                with recorded_run(wh, "promote", {"model": p.model, "parent": p.parent}) as run_id:
                    decision, _ = gate(wh, p, identity, run_id)
            last = out
            if not decision.promoted:
                break
            current = out
        with watch.stage("report"):
            report = ReportConfig(
                out=str(root / "reports" / c.name),
                base=c.model,
                model=last,
                suite=c.suite,
                split="test",
            )
            write_report(
                Warehouse.open_existing(root),
                Path(report.out),
                report.suite,
                report.split,
                report.base,
                report.model,
            )
    return current


def drain_prefect() -> None:
    """Send what Prefect still queues (logs, events); a CLI process pays this at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30, at_exit=False)
    EventsWorker.drain_all(timeout=30, at_exit=False)


def prefect_bake(bench: BenchConfig, root: Path, watch: Stopwatch) -> tuple[str, dict[str, float]]:
    """bake_flow as `distillery bake` runs it; returns the final model and diagnostics."""
    import distillery.flows.bake_flow as bake_module
    import distillery.flows.sample_flow as sample_module
    from distillery.flows.bake_flow import bake_flow
    from distillery.flows.runtime import run_flow

    # rows_in_run reads Parquet footers; the sample flow calls it for its progress artifact
    # (from the shards' progress callback when the artifact is due, and as each shard
    # ends), so count it: it is the one per-call cost the plain path does not have.
    probe = Stopwatch()
    calls = [0]
    rows_in_run = sample_module.rows_in_run

    def counted_rows_in_run(*args: Any) -> int:
        calls[0] += 1
        with probe.stage("rows_in_run"):
            return rows_in_run(*args)

    with contextlib.ExitStack() as stack:
        if not bench.heartbeats:
            from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

            stack.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
        for attr, stage in STAGE_FLOWS.items():
            stack.enter_context(
                patched(bake_module, attr, watch.wrap(stage, getattr(bake_module, attr)))
            )
        stack.enter_context(patched(sample_module, "rows_in_run", counted_rows_in_run))
        result = run_flow(bake_flow, None, config=bench.bake(), warehouse=str(root))
    with watch.stage("drain"):
        drain_prefect()
    diagnostics = {
        "rows_in_run_calls": float(calls[0]),
        "rows_in_run_seconds": probe.seconds.get("rows_in_run", 0.0),
        # The sample flow releases its backend when sampling ends: 0 unless that regressed.
        "cached_sampling_backends": float(len(sample_module._BACKENDS)),
    }
    return result["final"], diagnostics


def run_once(
    path: str,
    repeat: int,
    config: BenchConfig,
    work: Path,
    suite_file: Path,
    console: Console,
) -> RunResult:
    root = fresh_warehouse(work / f"{repeat}-{path}" / "wh", suite_file, console)
    watch = Stopwatch()
    diagnostics: dict[str, float] = {}
    with quiet_stdout():
        started = time.perf_counter()
        if path == "plain":
            final = plain_bake(config, root, console, watch)
        else:
            final, diagnostics = prefect_bake(config, root, watch)
        seconds = time.perf_counter() - started
    counts, passed = warehouse_counts(root)
    stages = dict(watch.seconds)
    # What no stage covers: bake-level setup, the bake's own artifacts, recorded runs.
    stages["other"] = seconds - sum(stages.values())
    shutil.rmtree(root.parent, ignore_errors=True)
    return RunResult(path, repeat, seconds, stages, counts, passed, final, diagnostics)


# ------------------------------------------------------------------ reporting


def median_stages(results: list[RunResult]) -> dict[str, float]:
    names = {s for r in results for s in r.stages}
    return {s: statistics.median(r.stages.get(s, 0.0) for r in results) for s in names}


def overhead_pct(prefect: float, plain: float) -> float:
    return 100.0 * (prefect - plain) / plain if plain > 0 else float("nan")


def print_results(
    out: Console, plain: list[RunResult], prefect: list[RunResult], summary: dict[str, Any]
) -> None:
    runs = Table("repeat", "first", "plain s", "prefect s", "overhead", title="per repeat")
    for a, b in zip(plain, prefect, strict=True):
        first = "plain" if a.repeat % 2 == 0 else "prefect"
        runs.add_row(
            str(a.repeat),
            first,
            f"{a.seconds:.2f}",
            f"{b.seconds:.2f}",
            f"{overhead_pct(b.seconds, a.seconds):+.1f} %",
        )
    out.print(runs)

    sp, sq = median_stages(plain), median_stages(prefect)
    stages = Table("stage", "plain s", "prefect s", "Δ s", title="median seconds per stage")
    order = [s for s in (*STAGES, "drain", "other") if s in sp or s in sq]
    for s in order:
        a, b = sp.get(s, 0.0), sq.get(s, 0.0)
        stages.add_row(s, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}")
    stages.add_row(
        "[bold]total",
        f"[bold]{summary['plain_median_s']:.2f}",
        f"[bold]{summary['prefect_median_s']:.2f}",
        f"[bold]{summary['prefect_median_s'] - summary['plain_median_s']:+.2f}",
    )
    out.print(stages)

    counts = Table("table", "plain", "prefect", title="rows written (last repeat)")
    for t in COUNTED:
        counts.add_row(t, str(plain[-1].counts[t]), str(prefect[-1].counts[t]))
    counts.add_row("verdicts passed", str(plain[-1].passed), str(prefect[-1].passed))
    out.print(counts)

    diag = prefect[-1].diagnostics
    out.print(
        f"rows_in_run (Parquet footer reads from the shard progress callback), last repeat: "
        f"{int(diag.get('rows_in_run_calls', 0))} calls, "
        f"{diag.get('rows_in_run_seconds', 0.0):.2f} s; sampling backends the sample flow "
        f"still holds open in this process: {int(diag.get('cached_sampling_backends', 0))}"
    )
    if not summary["heartbeats"]:
        out.print("[yellow]Prefect flow-run heartbeats were off (--no-heartbeats)[/]")
    met = summary["overhead_pct"] <= GOAL_PCT
    out.print(
        f"[bold]overhead {summary['overhead_pct']:+.1f} %[/] of the plain wall time "
        f"(median {summary['prefect_median_s']:.2f} s vs {summary['plain_median_s']:.2f} s over "
        f"{len(plain)} repeat(s)): goal ≤ {GOAL_PCT:.0f} % "
        + ("[green]met[/]" if met else "[red]not met[/]")
    )


def check_same_work(a: RunResult, b: RunResult) -> None:
    """Both paths must have written the same rows, or the timings compare different work."""
    if a.counts != b.counts or a.final != b.final:
        raise AssertionError(
            f"repeat {a.repeat}: the paths did different work: "
            f"{a.path} {a.counts} → {a.final}, {b.path} {b.counts} → {b.final}"
        )


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument(
        "--n", "--k", dest="n", type=int, default=8, help="train samples per prompt (was --k)"
    )
    p.add_argument("--train-prompts", type=int, default=16)
    p.add_argument("--test-prompts", type=int, default=8)
    p.add_argument("--eval-n", type=int, default=8, help="held-out draws per prompt")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--max-steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument(
        "--no-heartbeats",
        action="store_true",
        help="run the Prefect path with flow-run heartbeats off (diagnosis, not the default)",
    )
    args = p.parse_args(argv)
    if min(args.rounds, args.n, args.train_prompts, args.test_prompts, args.eval_n) < 1:
        p.error("--rounds, --n, --train-prompts, --test-prompts and --eval-n must be ≥ 1")
    if args.repeats < 1 or args.max_new_tokens < 1 or args.max_steps < 1:
        p.error("--repeats, --max-new-tokens and --max-steps must be ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Console()
    server_s = serve_prefect()  # before any import of Prefect (flows import it)
    out.print(f"prefect server up in {server_s:.1f} s at {os.environ['PREFECT_API_URL']}")
    config = BenchConfig(
        model=args.model,
        rounds=args.rounds,
        n=args.n,
        eval_n=args.eval_n,
        max_new_tokens=args.max_new_tokens,
        max_steps=args.max_steps,
        heartbeats=not args.no_heartbeats,
    )
    sink = open(os.devnull, "w")  # noqa: SIM115 - the plain path's console, for the whole run
    console = Console(file=sink)
    work = Path(tempfile.mkdtemp(prefix="distillery-bench-orch-"))
    try:
        suite_file = write_suite(work / "suite", args.train_prompts, args.test_prompts)
        # Warm-up: imports, the first model load and Prefect's client are one-time costs.
        # Same suite (so training sees full batches), little sampling and two steps.
        tiny = replace(config, rounds=1, n=2, eval_n=2, max_new_tokens=8, max_steps=2)
        warm = {
            path: run_once(path, -1, tiny, work / "warmup", suite_file, console)
            for path in ("plain", "prefect")
        }
        check_same_work(warm["plain"], warm["prefect"])
        for path, r in warm.items():
            out.print(f"warm-up {path}: {r.seconds:.1f} s (not counted)")
        results: dict[str, list[RunResult]] = {"plain": [], "prefect": []}
        for repeat in range(args.repeats):
            # Alternate the order so that drift on a shared machine cancels out.
            order = ("plain", "prefect") if repeat % 2 == 0 else ("prefect", "plain")
            for path in order:
                r = run_once(path, repeat, config, work, suite_file, console)
                results[path].append(r)
                out.print(
                    f"repeat {repeat} {path}: {r.seconds:.2f} s, final {r.final}, "
                    f"rows {r.counts} ({r.passed} verdicts passed)"
                )
            check_same_work(results["plain"][-1], results["prefect"][-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        sink.close()

    plain, prefect = results["plain"], results["prefect"]
    summary: dict[str, Any] = {
        "plain_median_s": statistics.median(r.seconds for r in plain),
        "prefect_median_s": statistics.median(r.seconds for r in prefect),
    }
    summary["overhead_pct"] = overhead_pct(summary["prefect_median_s"], summary["plain_median_s"])
    summary["goal_pct"] = GOAL_PCT
    summary["goal_met"] = summary["overhead_pct"] <= GOAL_PCT
    summary["heartbeats"] = config.heartbeats
    print_results(out, plain, prefect, summary)
    if args.out is not None:
        payload = {
            "config": asdict(config)
            | {"train_prompts": args.train_prompts, "test_prompts": args.test_prompts},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "prefect_server_start_s": server_s,
            "warmup_s": {path: r.seconds for path, r in warm.items()},
            "summary": summary,
            "stages_median_s": {"plain": median_stages(plain), "prefect": median_stages(prefect)},
            "runs": [asdict(r) for r in (*plain, *prefect)],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        out.print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
