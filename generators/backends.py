"""One factory for every sampling backend (evalplus-style): name in, Backend out."""

from __future__ import annotations

from distillery.generators import model_registry
from distillery.generators.base import Backend, SamplingError

BACKENDS = ("transformers", "vllm", "openai")


def make_backend(
    name: str,
    resolved: model_registry.ResolvedModel | None,
    *,
    base_url: str | None = None,
    served_model: str | None = None,
    dtype: str = "bf16",
    batch_rows: int | None = None,
    concurrency: int = 8,
    threads: int | None = None,
) -> Backend:
    """`threads`: torch threads for the transformers backend; None or 0 measures them."""
    if name == "transformers":
        from distillery.generators.sampler_transformers import (
            DEFAULT_BATCH_ROWS,
            TransformersBackend,
        )

        assert resolved is not None
        return TransformersBackend(
            resolved, dtype=dtype, batch_rows=batch_rows or DEFAULT_BATCH_ROWS, threads=threads
        )
    if name == "vllm":
        from distillery.generators.sampler_vllm import VLLMBackend

        assert resolved is not None
        return VLLMBackend(resolved)
    if name == "openai":
        from distillery.generators.sampler_openai import OpenAIBackend

        if not base_url:
            raise SamplingError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(base_url, served_model or "default", concurrency=concurrency)
    raise SamplingError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
