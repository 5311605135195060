"""Search as the data source: find verified answers that plain sampling from p₀ rarely gives.

A search runs in waves over the prompts that are still open. Each wave draws `wave` more
completions per open prompt with each sampling procedure:

- `sample`: the bare prompt (best-of-N, its draws judged by the verifier);
- `prompted`: the family's context (system prompt and exemplars) before the prompt;
- `retry`: each failed bare draw of the wave gets the verifier's reason back as the next
  user turn, up to `retries` times (validate-and-retry).

A prompt closes once it has `targets` distinct passing answers (solved) or has spent
`budget` completions (adaptive k: solved prompts stop early, unsolved ones get more).
Every completion is an ordinary content-hashed sample row that says which procedure
(`samples.procedure`) and context (`samples.context_id`) produced it, and every passing
one, whatever found it, is a training target for the *bare* prompt. A rerun finds its
samples and verdicts in the warehouse and makes the same decisions, so it resumes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from distillery.generators.base import (
    Attempt,
    Completion,
    SampleRequest,
    SamplingError,
)
from distillery.generators.base import SamplingParams as Params
from distillery.generators.contexts import Context
from distillery.generators.sampling import (
    Drawing,
    PromptRow,
    contexts_for,
    run_sampling,
    to_record,
)
from distillery.generators.search_config import SearchPolicy
from distillery.generators.strategy_retry import feedback
from distillery.warehouse.ids import content_id
from distillery.warehouse.records import SampleRecord

# Follow-ups get row indices far from any plain draw's; a retry row's stored idx is
# 100 × (the draw it follows up) + attempt.
RETRY_INDEX_BASE = 1_000_000

# (sample ids) -> their verified attempts; sandbox faults leave ids out (judged next run).
Judge = Callable[[Sequence[str]], dict[str, Attempt]]


@dataclass
class SearchSummary:
    prompts: int = 0
    solved: int = 0
    spent: int = 0  # completions the search looked at (already stored ones included)
    written: int = 0  # completions sampled by this run
    waves: int = 0
    per_family: dict[str, Counter[str]] = field(default_factory=dict)  # prompts, solved, spent
    passes: Counter[str] = field(default_factory=Counter)  # per procedure


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def retry_id(model_id: str, params: Params, prompt_id: str, attempt: int, messages: object) -> str:
    """A follow-up's sample id: the conversation so far, keyed like any other sample."""
    return content_id(
        "smp", prompt_id, model_id, params.identity(), params.seed, "retry", attempt, messages
    )


def retry_record(
    c: Completion, model_id: str, params: Params, backend: str, run_id: str, sample_id: str
) -> SampleRecord:
    """A follow-up's row: the id of its conversation, procedure "retry", idx without the base."""
    return replace(
        to_record(c, model_id, params, backend, run_id),
        sample_id=sample_id,
        idx=c.idx - RETRY_INDEX_BASE,
        procedure="retry",
    )


@dataclass
class _Prompt:
    row: PromptRow
    spent: int = 0
    passing: set[str] = field(default_factory=set)
    # No procedure can draw it (an exemplar under a prompted-only search): closed.
    undrawable: bool = False


@dataclass
class _Search:
    """One search's settings and state: what every wave and its follow-ups share."""

    drawing: Drawing
    params: Params
    judge: Judge
    config: SearchPolicy
    state: dict[str, _Prompt]
    summary: SearchSummary

    def open(self, pid: str) -> bool:
        s = self.state[pid]
        return len(s.passing) < self.config.targets and s.spent < self.config.budget

    def count(self, pid: str, attempt: Attempt | None, procedure: str) -> None:
        """One more completion spent on `pid`; a passing one is a distinct answer."""
        s = self.state[pid]
        s.spent += 1
        if attempt is not None and attempt.passed:
            s.passing.add(_norm(attempt.text))
            self.summary.passes[procedure] += 1


def run_search(
    drawing: Drawing,
    prompts: Sequence[PromptRow],
    params: Params,
    judge: Judge,
    config: SearchPolicy,
    contexts: Mapping[str, Context] | None = None,
    on_wave: Callable[[int, int, int], None] | None = None,
) -> SearchSummary:
    """Search `prompts` per `config`; every completion and verdict goes to the warehouse.
    `on_wave(wave, open prompts, left)` hears of each wave before it is drawn, with the
    budget the open prompts have left (a progress bar's total: a prompt's last wave may
    overrun its budget by part of a wave, and solved prompts stop short of it)."""
    if "prompted" in config.procedures and not contexts:
        raise SamplingError("the prompted search needs a context per family")
    search = _Search(
        drawing,
        params,
        judge,
        config,
        {p.prompt_id: _Prompt(p) for p in prompts},
        SearchSummary(prompts=len(prompts)),
    )
    state, summary = search.state, search.summary
    model_id = drawing.model.model_id
    wave = 0
    while True:
        open_ = [s.row for s in state.values() if search.open(s.row.prompt_id) and not s.undrawable]
        if not open_:
            break
        if on_wave is not None:
            left = sum(max(0, config.budget - state[r.prompt_id].spent) for r in open_)
            on_wave(wave + 1, len(open_), left)
        lo, hi = wave * config.wave, (wave + 1) * config.wave
        drawn: list[tuple[str, str, str]] = []  # (prompt_id, sample_id, procedure)
        for proc in ("sample", "prompted"):
            if proc not in config.procedures:
                continue
            ctx = contexts if proc == "prompted" else None
            got = run_sampling(drawing, open_, replace(params, n=hi), first=lo, contexts=ctx)
            summary.written += got.written
            for pid, cid in contexts_for(open_, ctx).items():
                drawn += [
                    (pid, params.sample_id(pid, model_id, i, cid), proc) for i in range(lo, hi)
                ]
        for p in {r.prompt_id for r in open_} - {pid for pid, _, _ in drawn}:
            state[p].undrawable = True
        verdicts = judge([sid for _, sid, _ in drawn])
        for pid, sid, proc in drawn:
            search.count(pid, verdicts.get(sid), proc)
        if "retry" in config.procedures and config.retries:
            summary.written += _retry(search, lo, drawn, verdicts)
        wave += 1
    summary.waves = wave
    fams: dict[str, Counter[str]] = defaultdict(Counter)
    for s in state.values():
        f = fams[s.row.family]
        f["prompts"] += 1
        f["solved"] += bool(s.passing)
        f["spent"] += s.spent
        summary.spent += s.spent
        summary.solved += bool(s.passing)
    summary.per_family = dict(sorted(fams.items()))
    return summary


def _retry(
    search: _Search,
    first: int,
    drawn: list[tuple[str, str, str]],
    verdicts: dict[str, Attempt],
) -> int:
    """Validate-and-retry on the wave's failed bare draws (indices from `first`); returns
    the completions written."""
    config, state = search.config, search.state
    wh, backend, model = search.drawing.wh, search.drawing.backend, search.drawing.model
    one = replace(search.params, n=1)
    # (prompt_id, draw index) -> the conversation's attempts so far
    convs: dict[tuple[str, int], list[Attempt]] = {}
    index = Counter[str]()
    for pid, sid, proc in drawn:
        if proc != "sample":
            continue
        i = first + index[pid]
        index[pid] += 1
        a = verdicts.get(sid)
        followed = sum(1 for p, _ in convs if p == pid)
        if a is not None and not a.passed and followed < config.retry_draws:
            convs[(pid, i)] = [a]
    written = 0
    for attempt in range(1, config.retries + 1):
        live = {
            key: hist for key, hist in convs.items() if not hist[-1].passed and search.open(key[0])
        }
        if not live:
            break
        ids: dict[tuple[str, int], str] = {}
        requests: list[SampleRequest] = []
        for (pid, i), hist in live.items():
            turns = list(state[pid].row.messages)
            for a in hist:
                turns += [("assistant", a.text), ("user", feedback(a))]
            messages = tuple(turns)
            sid = retry_id(model.model_id, one, pid, attempt, messages)
            ids[(pid, i)] = sid
            # The id as context gives each conversation its own row seed.
            requests.append(
                SampleRequest(pid, messages, (RETRY_INDEX_BASE + 100 * i + attempt,), sid)
            )
        have = wh.existing("samples", "sample_id", ids.values())
        todo = [r for r in requests if r.context not in have]
        if todo:
            for batch in backend.generate(todo, one, search.drawing.progress):
                wh.write(
                    [
                        retry_record(
                            c,
                            model.model_id,
                            one,
                            backend.name,
                            search.drawing.run_id,
                            ids[(c.prompt_id, (c.idx - RETRY_INDEX_BASE) // 100)],
                        )
                        for c in batch
                    ]
                )
                written += len(batch)
        got = search.judge(list(ids.values()))
        for key, sid in ids.items():
            a = got.get(sid)
            search.count(key[0], a, "retry")
            if a is None:
                convs.pop(key)
                continue
            convs[key].append(a)
    return written
