"""Any OpenAI-compatible chat endpoint: `vllm serve`, llama.cpp's server, a hosted provider.

One request per (prompt, index) with that row's seed, at most `concurrency` in flight,
retries with exponential backoff on connection errors, 408/409/429 and 5xx.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx

from distillery.generators.base import (
    Completion,
    ProgressFn,
    SampleRequest,
    SamplingError,
    SamplingParams,
)

API_KEY_ENV = "DISTILLERY_API_KEY"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FLUSH_EVERY = 64


@dataclass
class OpenAIBackend:
    base_url: str
    model: str
    concurrency: int = 8
    retries: int = 4
    timeout_s: float = 120.0
    backoff_s: float = 0.5
    name: str = "openai"
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise SamplingError(
                f"--base-url must start with http:// or https:// (got {self.base_url!r})"
            )
        key = os.environ.get(API_KEY_ENV) or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers=headers,
            timeout=self.timeout_s,
            limits=httpx.Limits(max_connections=self.concurrency),
        )

    def _one(self, req: SampleRequest, idx: int, params: SamplingParams) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": req.chat,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": params.row_seed(req.prompt_id, idx, req.context),
            "n": 1,
        }
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            started = time.perf_counter()
            try:
                resp = self._client.post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code != 200:
                raise SamplingError(
                    f"{self.base_url} answered HTTP {resp.status_code}: {resp.text[:200]}"
                )
            data = resp.json()
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            finish = "length" if choice.get("finish_reason") == "length" else "stop"
            return Completion(
                prompt_id=req.prompt_id,
                idx=idx,
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason=finish,
                latency_s=time.perf_counter() - started,
            )
        raise SamplingError(
            f"{self.base_url} failed after {self.retries + 1} attempts ({last}); "
            "check that the server is up, then rerun the same command to resume"
        )

    def generate(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: ProgressFn | None = None,
    ) -> Iterator[list[Completion]]:
        jobs = [(r, idx) for r in requests for idx in r.indices]
        done: list[Completion] = []
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            pending: set[Future[Completion]] = set()
            it = iter(jobs)
            try:
                while True:
                    while len(pending) < self.concurrency * 2:
                        job = next(it, None)
                        if job is None:
                            break
                        pending.add(pool.submit(self._one, job[0], job[1], params))
                    if not pending:
                        break
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        c = fut.result()
                        done.append(c)
                        if progress:
                            progress(1, c.completion_tokens)
                    if len(done) >= FLUSH_EVERY:
                        yield done
                        done = []
            finally:
                for fut in pending:
                    fut.cancel()
        if done:
            yield done

    def close(self) -> None:
        self._client.close()
