"""The eval job as a plain function: draw n per prompt, verify, report pass@k and strategies.

Draws are ordinary samples (content-hashed ids), so an evaluation reuses what the
warehouse already holds for the same model and parameters and samples only the rest.
Inference-time strategies run through `WarehouseContext`, which stores every completion
they ask for (retries as procedure "retry" samples of the original prompt) and its verdict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from distillery.config.base import project
from distillery.config.groups import BackendChoice
from distillery.evals.eval_config import EvalConfig
from distillery.evals.eval_progress import CountFn, EvalProgress
from distillery.evals.stats import (
    Figures,
    PromptDraws,
    PromptOutcome,
    sampling_figures,
    strategy_figures,
)
from distillery.filters.answer_key import answer_key, votable
from distillery.filters.registry import Verifiers
from distillery.generators import model_store
from distillery.generators.attempts import verified_attempts
from distillery.generators.base import Attempt, Backend, FollowUp, SampleRequest, SamplingParams
from distillery.generators.model_registry import ResolvedModel
from distillery.generators.sampling import Drawing, PromptRow, run_sampling, select_prompts
from distillery.generators.search import RETRY_INDEX_BASE, retry_id, retry_record
from distillery.generators.strategies import make_strategy
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse

# Part of every eval id. Rows from before the per-prompt outcomes were stored have other
# ids, so a rerun over the same verdicts writes a row that has them instead of deduping
# to the old one (the gate and the report's paired Δ need them).
EVAL_ROW_VERSION = 2


class EvalError(ValueError):
    """Bad evaluation input, or draws the verifier could not judge; says what to do."""


def sampling_params(job: EvalConfig) -> SamplingParams:
    """The engine's parameters for `job`'s draws."""
    return SamplingParams.of(job, job.n)


@dataclass
class WarehouseContext:
    """Strategy context over the warehouse: draws and follow-ups are stored and verified."""

    wh: Warehouse
    backend: Backend
    model: ResolvedModel
    params: SamplingParams
    prompts: dict[str, PromptRow]  # by prompt id
    verifiers: Verifiers
    run_id: str
    workers: int
    progress: Callable[[int, int], None] | None = None
    on_plan: Callable[[int], None] | None = None  # how many draws are missing, per `draws`

    def _verified(self, sample_ids: list[str]) -> dict[str, Attempt]:
        got = verified_attempts(self.wh, self.verifiers, sample_ids, self.run_id, self.workers)
        missing = len(set(sample_ids) - set(got))
        if missing:
            raise EvalError(
                f"{missing} draw(s) have no verdict (sandbox faults are never stored); "
                "rerun the same command to retry them"
            )
        return got

    def draws(self, prompt_ids: Sequence[str], n: int) -> dict[str, list[Attempt]]:
        params = replace(self.params, n=n)
        rows = [self.prompts[p] for p in prompt_ids]
        run_sampling(
            Drawing(self.wh, self.backend, self.model, self.run_id, self.progress),
            rows,
            params,
            on_plan=self.on_plan,
        )
        ids = {
            (p, i): params.sample_id(p, self.model.model_id, i)
            for p in prompt_ids
            for i in range(n)
        }
        verified = self._verified(list(ids.values()))
        return {p: [verified[ids[(p, i)]] for i in range(n)] for p in prompt_ids}

    def follow_ups(self, requests: Sequence[FollowUp]) -> dict[str, Attempt]:
        params = replace(self.params, n=1)
        ids = {
            r.prompt_id: retry_id(self.model.model_id, params, r.prompt_id, r.attempt, r.messages)
            for r in requests
        }
        have = self.wh.existing("samples", "sample_id", ids.values())
        todo = [
            SampleRequest(r.prompt_id, r.messages, (RETRY_INDEX_BASE + r.attempt,))
            for r in requests
            if ids[r.prompt_id] not in have
        ]
        if todo:
            for batch in self.backend.generate(todo, params, self.progress):
                self.wh.write(
                    [
                        retry_record(
                            c,
                            self.model.model_id,
                            params,
                            self.backend.name,
                            self.run_id,
                            ids[c.prompt_id],
                        )
                        for c in batch
                    ]
                )
        verified = self._verified(list(ids.values()))
        return {pid: verified[sid] for pid, sid in ids.items()}


def params_identity(params: SamplingParams) -> str:
    """The sampling parameters an eval is keyed on (the gate compares like with like)."""
    return canonical_json(params.identity() | {"seed": params.seed})


@dataclass(frozen=True)
class _Rows:
    """What every evals row of one run shares: the job, the model, the sampling identity
    and the run."""

    job: EvalConfig
    model_id: str
    params: str
    run_id: str

    def record(
        self,
        strategy: str,
        n: int,
        f: Figures,
        digest: str,
        outcomes: Sequence[tuple[str, str, int]],
    ) -> EvalRecord:
        """`outcomes`: (prompt_id, family, passes) per prompt, passes as EvalRecord.passes."""
        per_family = canonical_json(f.per_family)
        ordered = sorted(outcomes)
        return EvalRecord(
            eval_id=content_id(
                "evl",
                self.model_id,
                self.job.suite,
                self.job.split,
                strategy,
                n,
                f.k,
                self.params,
                digest,
                EVAL_ROW_VERSION,
            ),
            model_id=self.model_id,
            suite=self.job.suite,
            split=self.job.split,
            strategy=strategy,
            n=n,
            k=f.k,
            prompts=f.prompts,
            pass_at_1=f.pass_at_1,
            pass_at_k=f.pass_at_k,
            ci_low=f.ci_low,
            ci_high=f.ci_high,
            per_family=per_family,
            samples_per_query=f.samples_per_query,
            tokens_per_query=f.tokens_per_query,
            seconds_per_query=f.seconds_per_query,
            tokens=f.tokens,
            seconds=f.seconds,
            params=self.params,
            run_id=self.run_id,
            prompt_ids=[o[0] for o in ordered],
            prompt_families=[o[1] for o in ordered],
            passes=[o[2] for o in ordered],
        )


def run_eval(
    wh: Warehouse,
    job: EvalConfig,
    model: ResolvedModel,
    backend: Backend,
    run_id: str,
    progress: Callable[[int, int], None] | None = None,
    on_progress: CountFn | None = None,
) -> list[EvalRecord]:
    """Evaluate `model` per `job`; writes and returns the evals rows. `progress(samples,
    tokens)` hears of every draw made, `on_progress(done, total)` of the share of the
    eval done (see `eval_progress.py`)."""
    params = sampling_params(job)
    prompts = select_prompts(wh, job.suite, job.split, job.limit, job.per_family)
    specs = {
        pid: json.loads(spec)
        for pid, spec in wh.query(
            "SELECT prompt_id, verifier FROM prompts WHERE prompt_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [[p.prompt_id for p in prompts]],
        )
    }
    workers = job.workers or 2 * (os.cpu_count() or 1)
    # Programs never see the warehouse (or anything else of the host): see filters/sandbox/root.py.
    verifiers = Verifiers(workers=workers)
    try:
        by_id = {p.prompt_id: p for p in prompts}
        track = EvalProgress.of(job, len(prompts), on_progress)

        def drawn(samples: int, tokens: int) -> None:
            if progress is not None:
                progress(samples, tokens)
            track.drawn(samples)

        ctx = WarehouseContext(
            wh, backend, model, params, by_id, verifiers, run_id, workers, drawn, track.planned
        )
        draws = ctx.draws([p.prompt_id for p in prompts], job.n)
        track.draws_done()
        per_prompt = [
            PromptDraws(
                p.prompt_id,
                p.family,
                job.n,
                sum(a.passed for a in draws[p.prompt_id]),
                sum(a.tokens for a in draws[p.prompt_id]),
                sum(a.seconds for a in draws[p.prompt_id]),
            )
            for p in prompts
        ]
        # The id covers the outcomes: a rerun over the same verdicts is the same eval.
        digest = content_id("dig", sorted((d.prompt_id, d.n, d.c) for d in per_prompt))
        identity = params_identity(params)
        draw_outcomes = [(d.prompt_id, d.family, d.c) for d in per_prompt]
        rows = _Rows(job, model.model_id, identity, run_id)
        records = [
            rows.record(
                "sample",
                job.n,
                sampling_figures(per_prompt, k, job.bootstrap, job.seed),
                digest,
                draw_outcomes,
            )
            for k in job.k
        ]
        for i, name in enumerate(job.strategies):
            subset = prompts
            if name == "majority":
                subset = [p for p in prompts if votable(specs[p.prompt_id])]
                if not subset:
                    track.strategy_done(i)
                    continue  # no answer-type prompts in this selection
            budget = job.retries if name == "retry" else job.budget
            strategy = make_strategy(
                name, budget, key=lambda pid, text: answer_key(specs[pid], text)
            )
            outcomes = strategy.run(ctx, [(p.prompt_id, p.family, p.messages) for p in subset])
            figures = strategy_figures(
                [
                    PromptOutcome(o.prompt_id, o.family, o.passed, o.samples, o.tokens, o.seconds)
                    for o in outcomes
                ],
                budget,
                job.bootstrap,
                job.seed,
            )
            answers = content_id("dig", sorted((o.prompt_id, o.answer, o.passed) for o in outcomes))
            solved = [(o.prompt_id, o.family, int(o.passed)) for o in outcomes]
            records.append(rows.record(name, budget, figures, answers, solved))
            track.strategy_done(i)
    finally:
        verifiers.close()
    have = wh.existing("evals", "eval_id", (r.eval_id for r in records))
    wh.write([r for r in records if r.eval_id not in have])
    return records


def eval_stage(
    job: EvalConfig, root: Path, console: Console, on_progress: CountFn | None = None
) -> list[EvalRecord]:
    """Evaluate per `job`, print the tables. `on_progress(done, total)` hears how far the
    eval has got (the flow shows it in the UI)."""
    from distillery.console.progress import sampling_bar
    from distillery.generators.sample_stage import open_backend

    wh = Warehouse.open(root)
    select_prompts(wh, job.suite, job.split, job.limit, job.per_family)  # fail fast
    model, backend = open_backend(wh, console, job.model, project(job, BackendChoice))
    try:
        with (
            recorded_run(wh, "eval", job.as_params()) as run_id,
            sampling_bar(console, f"evaluating {model.name}") as (set_total, advance),
        ):

            def counted(done: int, total: int) -> None:
                set_total(total, done)  # the bar: a total, an ETA, stored draws done
                if on_progress is not None:
                    on_progress(done, total)

            model_store.register(wh, model, run_id)
            records = run_eval(wh, job, model, backend, run_id, advance, counted)
    finally:
        backend.close()
    print_evals(console, model.name, records)
    return records


def print_evals(console: Console, model: str, records: Sequence[EvalRecord]) -> None:
    """Success per strategy and family, then cost per query: two narrow tables, so that
    both read whole at 80 columns and in a log file."""
    where = f"{model} on {records[0].suite}/{records[0].split}" if records else model
    success = Table(
        "strategy",
        "family",
        "prompts",
        "pass@1",
        "pass@k",
        "95% CI",
        title=where,
        box=box.SIMPLE_HEAD,
    )
    cost = Table(
        "strategy", "samples/q", "tokens/q", "s/q", title="cost per query", box=box.SIMPLE_HEAD
    )
    for r in records:
        label = f"{r.strategy} k={r.k}"
        success.add_row(
            label,
            "all",
            str(r.prompts),
            f"{r.pass_at_1:.3f}",
            f"{r.pass_at_k:.3f}",
            f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
        )
        for fam, f in json.loads(r.per_family).items():
            success.add_row(
                "",
                fam,
                str(int(f["prompts"])),
                f"{f['pass_at_1']:.3f}",
                f"{f['pass_at_k']:.3f}",
                f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]",
            )
        cost.add_row(
            label,
            f"{r.samples_per_query:.1f}",
            f"{r.tokens_per_query:.1f}",
            f"{r.seconds_per_query:.3f}",
        )
    console.print(success)
    console.print(cost)
