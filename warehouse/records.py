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
    latency_s: float  # wall time of the batch that made it, shared by its rows
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
    strategy: str
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
    eval_id: str
    model_id: str
    suite: str
    split: str
    n: int
    k: int
    pass_at_1: float
    pass_at_k: float
    per_family: str  # JSON
    tokens: int
    seconds: float
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
