"""The sample flow: prompts with work left are cut into shards; each shard is a retried task.

A shard carries prompt ids, the job's plain parameters and the run id, never samples:
it reads its prompts from the warehouse and writes its samples there. Sample ids are
content hashes and the plan only asks for (prompt, index) pairs the warehouse lacks, so a
retried or rerun shard never writes a sample twice, and prompts that are complete are
not scheduled at all: the warehouse is the cache, so the tasks use no Prefect cache.

Shards run on a task runner (threads by default; `prefect-dask` for a Dask cluster,
see `task_runners.py`) or, with `shard_deployment`, as flow runs of a `sample-shard`
deployment that the workers of a Prefect work pool pick up.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from rich.console import Console

from distillery.config.base import project
from distillery.config.groups import BackendChoice, Sharding
from distillery.flows.artifacts import ProgressArtifact, publish_markdown, sample_md
from distillery.flows.run_log import stage_console
from distillery.flows.run_names import run_name
from distillery.flows.task_runners import make_task_runner
from distillery.generators import model_store
from distillery.generators.base import Backend, ProgressFn, SamplingError
from distillery.generators.interrupt import check as check_interrupt
from distillery.generators.interrupt import stop_requested
from distillery.generators.model_registry import ResolvedModel
from distillery.generators.sample_config import SampleConfig
from distillery.generators.sample_stage import (
    open_backend,
    print_summary,
    resolve_model,
    sampling_params,
)
from distillery.generators.sampling import (
    Drawing,
    SampleSummary,
    plan,
    prompts_by_id,
    run_sampling,
    select_prompts,
    shard,
)
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import DEFAULT_DIR as WAREHOUSE
from distillery.warehouse.store import Warehouse
from distillery.warehouse.writer_parquet import rows_in_run

MAX_SHARDS = 256  # a run stays a few hundred tasks at most, whatever the prompt count

# The open backend of this process, keyed by model id and backend settings: shards that
# land in the same process share loaded weights, and the lock keeps them from decoding at
# once. Only one is kept (a process samples one model at a time), and the flow releases it
# when sampling ends, so a bake's training never shares memory with the last sampler.
_BACKENDS: dict[tuple[Any, ...], tuple[ResolvedModel, Backend, threading.Lock]] = {}
_BACKENDS_LOCK = threading.Lock()
# The command's rich bar, when a shard runs in the process that shows it.
_CONSOLE_PROGRESS: dict[str, ProgressFn] = {}


def release_backends() -> None:
    """Close this process's open backends (their weights go with them)."""
    with _BACKENDS_LOCK:
        for _, backend, _ in _BACKENDS.values():
            backend.close()
        _BACKENDS.clear()


atexit.register(release_backends)


def _backend(
    wh: Warehouse, job: SampleConfig, model_id: str
) -> tuple[ResolvedModel, Backend, threading.Lock]:
    key = (
        # The directory made absolute (one warehouse named two ways shares the backend);
        # a URL as it is: resolving `s3:/bucket/p` would make it a path under the cwd.
        str(wh.root.resolve()) if wh.location.is_local else wh.url,
        model_id,
        job.model,
        job.backend,
        job.base_url,
        job.served_model,
        job.dtype,
        job.batch_rows,
        job.concurrency,
        job.threads,
    )
    with _BACKENDS_LOCK:
        if key not in _BACKENDS:
            for _, old, _ in _BACKENDS.values():
                old.close()
            _BACKENDS.clear()
            choice = project(job, BackendChoice)
            model, backend = open_backend(wh, Console(quiet=True), job.model, choice)
            if model.model_id != model_id:
                backend.close()
                raise SamplingError(
                    f"{job.model!r} now resolves to another model ({model.model_id}, not "
                    f"{model_id}); rerun the command"
                )
            _BACKENDS[key] = (model, backend, threading.Lock())
        return _BACKENDS[key]


def sample_shard_work(
    warehouse: str,
    job: dict[str, Any],
    prompt_ids: list[str],
    run_id: str,
    model_id: str,
    progress_id: str | None = None,
    total: int = 0,
) -> dict[str, int]:
    """Sample one shard's prompts into the warehouse; returns written, tokens and pid.

    `model_id` is what the flow resolved the job's model to: a shard that finds the name
    pointing elsewhere (weights replaced mid-run) fails instead of mixing two models.
    """
    spec = SampleConfig(**job)
    wh = Warehouse(Path(warehouse))
    prompts = prompts_by_id(wh, prompt_ids)
    model, backend, lock = _backend(wh, spec, model_id)
    bar = _CONSOLE_PROGRESS.get(run_id)
    artifact = ProgressArtifact.attach(progress_id) if progress_id else None

    def progress(samples: int, tokens: int) -> None:
        if bar is not None:
            bar(samples, tokens)
        # Checked first: counting the run's rows reads every file footer it wrote. Once
        # stopping (Ctrl-C), no call to a server that may be gone with the terminal's signal.
        if artifact is not None and total and artifact.due() and not stop_requested():
            artifact.update(rows_in_run(wh.root, "samples", run_id) / total)

    with lock:
        check_interrupt()  # a shard queued behind the lock when Ctrl-C came draws nothing
        drawing = Drawing(wh, backend, model, run_id, progress)
        summary = run_sampling(drawing, prompts, sampling_params(spec))
    # The pid tells the flow how many processes its shards ran in (threads: one; Dask: many).
    return {"written": summary.written, "tokens": summary.tokens, "pid": os.getpid()}


def _retry_unless_stopped(task: Any, task_run: Any, state: Any) -> bool:
    """A shard that failed is retried, unless the command is being stopped (Ctrl-C)."""
    return not stop_requested()


@task(
    name="sample-shard",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_unless_stopped,
    cache_policy=NO_CACHE,
)
def sample_shard(
    warehouse: str,
    job: dict[str, Any],
    prompt_ids: list[str],
    run_id: str,
    model_id: str,
    progress_id: str | None = None,
    total: int = 0,
) -> dict[str, int]:
    return sample_shard_work(warehouse, job, prompt_ids, run_id, model_id, progress_id, total)


@flow(name="sample-shard", retries=2, retry_delay_seconds=5, log_prints=True)
def sample_shard_flow(
    warehouse: str,
    job: dict[str, Any],
    prompt_ids: list[str],
    run_id: str,
    model_id: str,
    progress_id: str | None = None,
    total: int = 0,
) -> dict[str, int]:
    """One shard as its own flow run, for work-pool workers (see `shard_deployment`)."""
    return sample_shard_work(warehouse, job, prompt_ids, run_id, model_id, progress_id, total)


def _run_on_deployment(
    deployment: str,
    shards: list[list[str]],
    common: dict[str, Any],
    progress: ProgressArtifact,
    total: int,
    root: Path,
    run_id: str,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    runs = [
        run_deployment(deployment, parameters={**common, "prompt_ids": ids}, timeout=0)
        for ids in shards
    ]
    pending = {r.id for r in runs}
    failed: list[str] = []
    with get_client(sync_client=True) as client:
        while pending:
            for run in list(pending):
                state = client.read_flow_run(run).state
                if state is not None and state.is_final():
                    pending.discard(run)
                    if not state.is_completed():
                        failed.append(f"{run} ({state.name})")
            if total:
                progress.update(rows_in_run(root, "samples", run_id) / total)
            if pending:
                time.sleep(1.0)
    if failed:
        raise SamplingError(
            f"{len(failed)} shard flow run(s) did not complete (first: {failed[0]}); "
            "rerun the same command to sample what is missing"
        )


def _summary(
    wh: Warehouse, run_id: str, prompts: int, k: int, already: int, seconds: float
) -> SampleSummary:
    rows = wh.query(
        "SELECT p.family, count(*), sum(s.completion_tokens) FROM samples s "
        "JOIN prompts p USING (prompt_id) WHERE s.run_id = ? GROUP BY 1",
        [run_id],
    )
    return SampleSummary(
        prompts=prompts,
        requested=prompts * k,
        already=already,
        written=sum(n for _, n, _ in rows),
        tokens=int(sum(t or 0 for _, _, t in rows)),
        seconds=seconds,
        per_family={fam: n for fam, n, _ in rows},
    )


def run_sample_stage(
    job: SampleConfig, sharding: Sharding, root: Path, console: Console
) -> SampleSummary:
    """Plan, fan the shards out, wait, summarise (inside a flow run)."""
    from distillery.console.progress import sampling_bar

    params = sampling_params(job)
    shard_deployment = sharding.shard_deployment
    runner = (sharding.runner, sharding.dask_address, sharding.dask_workers)
    make_task_runner(*runner)  # fail fast on a bad runner
    wh = Warehouse.open(root)
    prompts = select_prompts(wh, job.suite, job.split, job.limit, job.per_family)
    model = resolve_model(wh, console, job.model, job.backend, job.base_url)
    started = time.perf_counter()
    run_params = {**job.as_params(), **sharding.as_params()}
    with recorded_run(wh, "sample", run_params) as run_id:
        model_store.register(wh, model, run_id)
        requests, already = plan(wh, prompts, model.model_id, params)
        total = sum(len(r.indices) for r in requests)
        shards = shard([r.prompt_id for r in requests], sharding.shard_prompts, MAX_SHARDS)
        progress = ProgressArtifact("sample-progress", f"sampling {model.name}: {total} samples")
        common = {
            # The directory as opened, or the URL itself (a shard's parameters in the UI).
            "warehouse": wh.url,
            "job": job.as_params(),
            "run_id": run_id,
            "model_id": model.model_id,
            "progress_id": str(progress.id),
            "total": total,
        }
        processes: set[int] = set()
        with sampling_bar(console, f"sampling {model.name}") as (set_total, advance):
            set_total(total)
            _CONSOLE_PROGRESS[run_id] = advance
            try:
                if shard_deployment:
                    _run_on_deployment(
                        shard_deployment, shards, common, progress, total, wh.root, run_id
                    )
                elif shards:
                    with make_task_runner(*runner) as task_runner:
                        futures = [
                            task_runner.submit(sample_shard, {**common, "prompt_ids": ids})
                            for ids in shards
                        ]
                        for future in as_completed(futures):
                            processes.add(future.result()["pid"])
                            progress.update(rows_in_run(wh.root, "samples", run_id) / total)
            finally:
                _CONSOLE_PROGRESS.pop(run_id, None)
                release_backends()
        progress.update(1.0, force=True)
    summary = _summary(wh, run_id, len(prompts), job.n, already, time.perf_counter() - started)
    print_summary(console, job, summary)
    publish_markdown(
        "sample-summary",
        sample_md(model.name, job.n, summary, len(shards), len(processes) or None),
    )
    return summary


@flow(
    name="sample",
    flow_run_name=run_name("sample", "config.model", "config.suite/config.split", "n=config.n"),
)
def sample_flow(
    config: SampleConfig = SampleConfig(),  # noqa: B008 - frozen, so one shared default is safe
    sharding: Sharding = Sharding(),  # noqa: B008
    warehouse: str = WAREHOUSE,
) -> dict[str, Any]:
    """Sample n completions per prompt into the warehouse; rerun to resume."""
    summary = run_sample_stage(config, sharding, Path(warehouse), stage_console())
    return asdict(summary)
