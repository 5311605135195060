"""The search job as a plain function: find verified targets with best-of-N, a prompted
context and validate-and-retry (generators/search.py), every completion and verdict in the
warehouse. The `search` flow and the bake call this; benchmarks call it without Prefect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from distillery.config.base import project
from distillery.config.groups import BackendChoice
from distillery.filters.registry import Verifiers
from distillery.generators import model_store
from distillery.generators.attempts import verified_attempts
from distillery.generators.base import Backend, SamplingParams
from distillery.generators.contexts import (
    build_contexts,
    read_context_file,
    record_contexts,
)
from distillery.generators.model_registry import ResolvedModel
from distillery.generators.sampling import Drawing, select_prompts
from distillery.generators.search import SearchSummary, run_search
from distillery.generators.search_config import SearchConfig
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


def sampling_params(job: SearchConfig) -> SamplingParams:
    """The engine's parameters for one wave: `wave` draws per prompt."""
    return SamplingParams.of(job, job.wave)


def search_in(
    wh: Warehouse,
    job: SearchConfig,
    model: ResolvedModel,
    backend: Backend,
    run_id: str,
    progress: Any = None,
    on_wave: Any = None,
) -> SearchSummary:
    """Run `job` with an open backend; the plain core the flow and benchmarks share."""
    config, params = job, sampling_params(job)
    prompts = select_prompts(wh, job.suite, job.split, job.limit, job.per_family)
    contexts = None
    if "prompted" in config.procedures:
        contexts = build_contexts(
            wh, job.suite, config.shots, Path(job.context_file) if job.context_file else None
        )
        record_contexts(wh, contexts, run_id)
    workers = job.workers or 2 * (os.cpu_count() or 1)
    # Programs never see the warehouse (or anything else of the host): see filters/sandbox/root.py.
    verifiers = Verifiers(workers=workers)
    try:
        return run_search(
            Drawing(wh, backend, model, run_id, progress),
            prompts,
            params,
            lambda ids: verified_attempts(wh, verifiers, ids, run_id, workers),
            config,
            contexts,
            on_wave,
        )
    finally:
        verifiers.close()


def search_stage(job: SearchConfig, root: Path, console: Console) -> SearchSummary:
    from distillery.console.progress import sampling_bar
    from distillery.generators.sample_stage import open_backend

    wh = Warehouse.open(root)
    select_prompts(wh, job.suite, job.split, job.limit, job.per_family)  # fail fast
    if job.context_file:
        read_context_file(Path(job.context_file))  # a bad file stops us before any work
    model, backend = open_backend(wh, console, job.model, project(job, BackendChoice))
    try:
        with (
            recorded_run(wh, "search", job.as_params()) as run_id,
            sampling_bar(console, f"searching with {model.name}") as (set_total, advance),
        ):
            drawn = [0]

            def count(samples: int, tokens: int) -> None:
                drawn[0] += samples
                advance(samples, tokens)

            def wave(w: int, open_prompts: int, left: int) -> None:
                console.print(f"search wave {w}: {open_prompts} prompts still open")
                # What is drawn plus the budget the open prompts have left: the bar has a
                # total and an ETA, which shrink as prompts are solved early.
                set_total(drawn[0] + left)

            model_store.register(wh, model, run_id)
            summary = search_in(wh, job, model, backend, run_id, count, wave)
            set_total(drawn[0])  # solved prompts stopped early: the bar ends full
    finally:
        backend.close()
    print_search(console, job, summary)
    return summary


def print_search(console: Console, job: SearchConfig, s: SearchSummary) -> None:
    table = Table(
        "family",
        "prompts",
        "solved",
        "completions",
        title=f"search {'+'.join(job.procedures)} on {job.suite}/{job.split} "
        f"(budget {job.budget}, {job.targets} targets)",
    )
    for fam, c in s.per_family.items():
        table.add_row(fam, str(c["prompts"]), str(c["solved"]), str(c["spent"]))
    table.add_row("all", str(s.prompts), str(s.solved), str(s.spent), style="bold")
    console.print(table)
    found = ", ".join(f"{k} {v}" for k, v in sorted(s.passes.items())) or "none"
    console.print(
        f"{s.waves} wave(s), {s.written} new completions; passing answers by procedure: {found}"
    )
