"""The sampling protocol: requests in, completions out, whatever engine is behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Protocol

from distillery.config.base import project
from distillery.config.groups import Decoding
from distillery.warehouse.ids import canonical_json, content_id, id_of_canonical
from distillery.warehouse.ids import json_str as _str


class SamplingError(Exception):
    """Bad sampling input or an engine failure; the message says what to do."""


@dataclass(frozen=True)
class SamplingParams:
    """What the engine is asked for: `n` completions a prompt, drawn as `Decoding` says.
    The same field names as the stages' `Decoding` options, and its defaults (declared
    there, once)."""

    n: int  # completions per prompt
    temperature: float = Decoding.temperature
    top_p: float = Decoding.top_p
    max_new_tokens: int = Decoding.max_new_tokens
    seed: int = Decoding.seed

    @classmethod
    def of(cls, decoding: Decoding, n: int) -> SamplingParams:
        """`decoding`'s fields (a stage config inheriting `Decoding`), unrenamed, for `n`
        completions a prompt."""
        return cls(n, **project(decoding, Decoding).as_params())

    def __post_init__(self) -> None:
        if self.n < 1:
            raise SamplingError(f"--n must be at least 1 (got {self.n})")
        if self.temperature < 0:
            raise SamplingError(f"--temperature must be >= 0 (got {self.temperature})")
        if not 0 < self.top_p <= 1:
            raise SamplingError(f"--top-p must be in (0, 1] (got {self.top_p})")
        if self.max_new_tokens < 1:
            raise SamplingError(f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})")

    def identity(self) -> dict[str, Any]:
        """What a sample's id depends on besides prompt, model and index (n is not: the
        5th sample is the same sample whether 8 or 16 were asked for)."""
        d = asdict(self)
        del d["n"], d["seed"]
        return d

    @cached_property
    def _identity_json(self) -> str:
        return canonical_json(self.identity())

    def sample_id(self, prompt_id: str, model_id: str, idx: int, context: str | None = None) -> str:
        """`context` names the context (system prompt, exemplars) put before the prompt; a
        bare-prompt draw has none and keeps the id it always had.

        The same id as `content_id("smp", prompt_id, model_id, identity, seed, idx[,
        context])`, built from the parameters' JSON made once: resume planning computes
        one per (prompt, index), a million at a time."""
        head, tail = self.id_text(prompt_id, model_id, context)
        return id_of_canonical("smp", f"{head}{idx:d}{tail}")

    def id_text(self, prompt_id: str, model_id: str, context: str | None = None) -> tuple[str, str]:
        """The text a sample id hashes, around its index: `head + str(idx) + tail`. Resume
        planning hands these to DuckDB, which hashes every index of every prompt there."""
        head = f"[{_str(prompt_id)},{_str(model_id)},{self._identity_json},{self.seed:d},"
        return head, "]" if context is None else f",{_str(context)}]"

    def row_seed(self, prompt_id: str, idx: int, context: str | None = None) -> int:
        """A 63-bit seed per (prompt, index[, context]): the row's randomness, independent
        of batching."""
        parts: tuple[object, ...] = (self.seed, prompt_id, idx)
        if context is not None:
            parts += (context,)
        return int(content_id("seed", *parts)[5:21], 16) >> 1


@dataclass(frozen=True)
class SampleRequest:
    prompt_id: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    indices: tuple[int, ...]  # which sample indices of this prompt to produce
    context: str | None = None  # context_id when `messages` carry a context before the prompt

    @property
    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass(frozen=True)
class Completion:
    prompt_id: str
    idx: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    latency_s: float


ProgressFn = Callable[[int, int], None]  # (samples finished, tokens produced) since last call


class Backend(Protocol):
    name: str

    def generate(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: ProgressFn | None = None,
    ) -> Iterator[list[Completion]]:
        """Yield completions in batches as they finish; each batch is written before the next."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------- inference-time strategies


@dataclass(frozen=True)
class Attempt:
    """One verified completion a strategy drew or asked for."""

    sample_id: str
    prompt_id: str
    text: str
    passed: bool
    reason: str
    detail: str
    tokens: int
    seconds: float  # its share of sampling time plus its verification


@dataclass(frozen=True)
class FollowUp:
    """Another turn of a conversation: the original messages, then (answer, feedback) pairs."""

    prompt_id: str
    messages: tuple[tuple[str, str], ...]
    attempt: int  # 1 for the first retry


@dataclass(frozen=True)
class Outcome:
    """What a strategy returned for one prompt and what it cost."""

    prompt_id: str
    family: str
    passed: bool  # the returned answer, judged by the prompt's verifier
    samples: int
    tokens: int
    seconds: float
    answer: str  # sample_id of the returned completion

    @classmethod
    def of(
        cls, prompt_id: str, family: str, attempts: Sequence[Attempt], chosen: Attempt
    ) -> Outcome:
        """`chosen` returned, every one of `attempts` paid for."""
        return cls(
            prompt_id=prompt_id,
            family=family,
            passed=chosen.passed,
            samples=len(attempts),
            tokens=sum(a.tokens for a in attempts),
            seconds=sum(a.seconds for a in attempts),
            answer=chosen.sample_id,
        )


class StrategyContext(Protocol):
    """Where a strategy gets verified completions; the warehouse-backed one stores them."""

    def draws(self, prompt_ids: Sequence[str], n: int) -> dict[str, list[Attempt]]:
        """The first n independent draws of each prompt, verified, in index order."""
        ...

    def follow_ups(self, requests: Sequence[FollowUp]) -> dict[str, Attempt]:
        """One more completion per conversation, verified against the original prompt."""
        ...


class Strategy(Protocol):
    name: str
    budget: int  # N samples, or R retries

    def run(
        self, ctx: StrategyContext, prompts: Sequence[tuple[str, str, tuple[tuple[str, str], ...]]]
    ) -> list[Outcome]:
        """Answer each (prompt_id, family, messages); one Outcome per prompt, in order."""
        ...
