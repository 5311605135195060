"""vLLM on a CUDA machine: `LLM.chat(prompts, SamplingParams(n=…, seed=…))`.

Imported only when the backend is asked for and CUDA is present; vllm is the optional
extra `distillery[vllm]`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from distillery.generators import model_registry
from distillery.generators.base import (
    Completion,
    ProgressFn,
    SampleRequest,
    SamplingError,
    SamplingParams,
)

CHUNK_PROMPTS = 512


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SamplingError(
            "the vllm backend needs a CUDA GPU; use --backend transformers on this machine"
        )
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise SamplingError(
            "vllm is not installed; run `pip install 'distillery[vllm]'` on the GPU machine"
        ) from None


@dataclass
class VLLMBackend:
    resolved: model_registry.ResolvedModel
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    name: str = "vllm"
    _llm: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        require_cuda()
        if self.resolved.path is None:
            raise SamplingError(f"model {self.resolved.name!r} has no weights directory for vllm")
        from vllm import LLM

        self._llm = LLM(
            model=self.resolved.path,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            dtype="bfloat16",
        )

    def generate(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: ProgressFn | None = None,
    ) -> Iterator[list[Completion]]:
        from vllm import SamplingParams as VSamplingParams

        for start in range(0, len(requests), CHUNK_PROMPTS):
            chunk = requests[start : start + CHUNK_PROMPTS]
            sps = [
                VSamplingParams(
                    n=len(r.indices),
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_new_tokens,
                    # One seed per request: vllm derives the n rows from it.
                    seed=params.row_seed(r.prompt_id, r.indices[0], r.context),
                )
                for r in chunk
            ]
            t0 = time.perf_counter()
            outs = self._llm.chat([r.chat for r in chunk], sps, use_tqdm=False)
            seconds = time.perf_counter() - t0
            total = sum(len(o.token_ids) for out in outs for o in out.outputs) or 1
            batch: list[Completion] = []
            for req, out in zip(chunk, outs, strict=True):
                for idx, o in zip(req.indices, out.outputs, strict=True):
                    batch.append(
                        Completion(
                            prompt_id=req.prompt_id,
                            idx=idx,
                            text=o.text,
                            prompt_tokens=len(out.prompt_token_ids or []),
                            completion_tokens=len(o.token_ids),
                            finish_reason="length" if o.finish_reason == "length" else "stop",
                            latency_s=seconds * len(o.token_ids) / total,
                        )
                    )
            if progress:
                progress(len(batch), sum(c.completion_tokens for c in batch))
            yield batch

    def close(self) -> None:
        self._llm = None
