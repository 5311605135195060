"""Groups of fields several stages share, each declared once (see `base.py`).

A stage's config inherits the groups it needs, so its options stay flat (`--temperature`,
not `--decoding-temperature`) and a default lives in one place. A stage that needs
another default for a shared field redeclares that field, with its help, in its config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import Split, StageConfig, at_least, check

DEFAULT_MODEL = "smollm2-135m"
Backend = Literal["transformers", "vllm", "openai"]
Dtype = Literal["bf16", "fp32", "fp16"]


@dataclass(frozen=True)
class Decoding(StageConfig):
    """How each completion is drawn."""

    temperature: float = 0.8
    """Sampling temperature (0: greedy)."""
    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches this."""
    max_new_tokens: int = 128
    """Longest completion, in tokens."""
    seed: int = 0
    """Seed of every draw (a draw's randomness depends on it, the prompt and its index)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.temperature >= 0, f"--temperature must be >= 0 (got {self.temperature})")
        check(0 < self.top_p <= 1, f"--top-p must be in (0, 1] (got {self.top_p})")
        at_least(self.max_new_tokens, 1, "max_new_tokens")


@dataclass(frozen=True)
class PromptScope(StageConfig):
    """Which prompts a stage works on."""

    suite: str = "seeds"
    """A suite loaded with `distillery prompts load`."""
    split: Split | None = "train"
    """train | test (none: both)."""
    limit: int | None = None
    """At most this many prompts."""
    per_family: int | None = None
    """At most this many prompts per family."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.limit, 1, "limit")
        at_least(self.per_family, 1, "per_family")


@dataclass(frozen=True)
class BackendChoice(StageConfig):
    """Which engine samples, and how."""

    backend: Backend = "transformers"
    """transformers (CPU or GPU), vllm (GPU) or openai (any OpenAI-compatible server)."""
    dtype: Dtype = "bf16"
    """transformers backend: weights' dtype."""
    threads: int | None = None
    """torch threads on a CPU (default: DISTILLERY_THREADS, else measured; on a busy 2-core
    host 1 thread samples many times faster than 2)."""
    batch_rows: int | None = None
    """transformers backend: rows per decode batch."""
    base_url: str | None = None
    """openai backend: the server's endpoint (e.g. http://127.0.0.1:8000/v1)."""
    served_model: str | None = None
    """openai backend: the model name the server expects (default: --model)."""
    concurrency: int = 8
    """openai backend: requests in flight."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            self.threads is None or self.threads >= 0,
            f"--threads must be 0 (measure) or a positive count (got {self.threads})",
        )
        at_least(self.batch_rows, 1, "batch_rows")
        at_least(self.concurrency, 1, "concurrency")
        check(
            self.backend != "openai" or bool(self.base_url),
            "--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)",
        )


@dataclass(frozen=True)
class Sharding(StageConfig):
    """How sampling fans out: shards of prompts, each a task (or a flow run on a pool)."""

    shard_prompts: int = 16
    """Prompts per shard (one task each)."""
    shard_deployment: str | None = None
    """Run shards as flow runs of this deployment (e.g. sample-shard/pool) on a work
    pool's workers."""
    runner: Literal["threads", "dask"] = "threads"
    """Where shards run: threads, or dask (prefect-dask)."""
    dask_address: str | None = None
    """Join this Dask scheduler instead of a local cluster."""
    dask_workers: int = 2
    """Processes of the local Dask cluster."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self.shard_prompts, 1, "shard_prompts")
        at_least(self.dask_workers, 1, "dask_workers")
