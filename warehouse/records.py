"""One frozen record type per table; the Parquet schema is derived from these fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PromptRecord:
    prompt_id: str
    suite: str
    family: str
    split: str
    messages: str  # JSON list of {"role", "content"}
    verifier: str  # JSON verifier spec, see filters/spec.py
    reference: str | None
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    name: str
    source: str  # alias, hub id, directory or GGUF file it was resolved from
    source_kind: str  # see generators/model_registry.py SOURCE_KINDS
    path: str | None  # local directory with the weights, if any
    parent_id: str | None
    job_id: str | None
    trained: bool  # False for random-weight models such as tiny-random
    promoted: bool
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class SampleRecord:
    sample_id: str
    prompt_id: str
    model_id: str
    run_id: str
    backend: str
    idx: int
    seed: int
    temperature: float
    top_p: float
    max_new_tokens: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence) or "length" (hit max_new_tokens)
    latency_s: float  # this row's share of its batch's wall time
    # What drew it: "sample" for independent draws from the bare prompt (what pass@k counts);
    # "prompted" for a draw with a context before the prompt; "retry" for a
    # validate-and-retry follow-up (RSFT targets, never counted as independent draws).
    procedure: str = "sample"
    # The context (system prompt, exemplars: the `contexts` table) put before the prompt by
    # a "prompted" draw; None for a draw from the bare prompt.
    context_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ContextRecord:
    """What a "prompted" search put before a prompt: a system prompt and worked exemplars.

    Its passing outputs are trained against the bare prompt (context distillation), so the
    context is what the baked model learns to do without being told.
    """

    context_id: str
    name: str
    suite: str
    family: str
    system: str | None
    shots: str  # JSON list of [user, assistant]
    exemplar_ids: list[str]  # prompt ids the exemplars came from (never prompted with it)
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class VerdictRecord:
    sample_id: str
    verifier: str
    verifier_version: str
    passed: bool
    score: float | None
    reason: str
    detail: str
    seconds: float
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class PairRecord:
    pair_id: str
    prompt_id: str
    chosen_id: str
    rejected_id: str
    margin: float
    pairing: str  # how the pair was built: pass-fail | best-worst | all
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class SelectionRecord:
    """One RSFT selection: the samples chosen as training targets for a scope and settings.

    A selection is one row (its sample ids a list, `unnest` them in SQL): RSFT trains on the
    latest selection stored for its scope and settings, never on one of its own.
    """

    selection_id: str  # hash(scope, settings, the chosen sample ids)
    suite: str | None  # None: every suite
    model_id: str  # whose samples
    split: str | None  # None: both splits
    mode: str  # all | best
    samples_per_prompt: int
    samples_per_family: int | None
    sample_ids: list[str]  # in training order: by family, prompts round-robin
    prompts: int  # prompts with a verified sample
    prompts_without_pass: int
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class TrainingJobRecord:
    job_id: str
    kind: str  # rsft | dpo
    base_model_id: str
    output_model_id: str | None
    sample_ids: list[str]
    pair_ids: list[str]
    config: str  # JSON
    metrics: str  # JSON, loss curve included
    status: str
    reason: str | None
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class EvalRecord:
    """One figure of one evaluation: pass@k of plain samples, or a strategy's success.

    For strategy "sample", pass_at_k is the unbiased estimate from n draws per prompt and
    the cost columns are those of drawing k samples. For an inference-time strategy
    (best_of_n, retry, majority), pass_at_1 and pass_at_k are both its success rate at
    budget k, and the cost columns are what it actually spent.

    The per-prompt outcomes (three parallel lists sorted by prompt id) let two evals be
    compared pairwise over the same prompts (evals/paired.py): for strategy "sample"
    `passes` holds c, the draws of n that passed; for a strategy 1 (solved) or 0. Rows
    written before they existed read back with NULL there.
    """

    eval_id: str
    model_id: str
    suite: str
    split: str
    strategy: str
    n: int
    k: int
    prompts: int
    pass_at_1: float
    pass_at_k: float
    ci_low: float  # 95 % bootstrap interval over prompts, of pass_at_k
    ci_high: float
    per_family: str  # JSON {family: {prompts, pass_at_1, pass_at_k, ci_low, ci_high}}
    samples_per_query: float
    tokens_per_query: float
    seconds_per_query: float  # sampling plus verifying
    tokens: int
    seconds: float
    params: str  # JSON sampling parameters
    run_id: str
    prompt_ids: list[str] = field(default_factory=list)
    prompt_families: list[str] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class PromotionRecord:
    """A promotion gate's decision with the numbers it was made on."""

    promotion_id: str
    model_id: str
    parent_id: str
    suite: str
    split: str
    model_eval_id: str
    parent_eval_id: str
    promoted: bool
    reasons: list[str]
    numbers: str  # JSON: pass@1 of both, the paired Δ with its intervals, per family too
    config: str  # JSON GateConfig
    run_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    flow: str
    parameters: str  # JSON
    code_version: str
    started_at: datetime
    ended_at: datetime | None
    status: str  # running | completed | failed
    error: str | None
    created_at: datetime = field(default_factory=utcnow)
