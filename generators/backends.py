"""One factory for every sampling backend (evalplus-style): name in, Backend out."""

from __future__ import annotations

import typing

from distillery.config.groups import Backend as BackendName
from distillery.config.groups import BackendChoice
from distillery.generators import model_registry
from distillery.generators.base import Backend, SamplingError

BACKENDS = typing.get_args(BackendName)


def make_backend(
    resolved: model_registry.ResolvedModel | None,
    choice: BackendChoice,
    served_model: str = "default",
) -> Backend:
    """The backend `choice` names, for `resolved` (None for a server's model).
    `choice.threads`: torch threads for the transformers backend; None or 0 measures them."""
    name = choice.backend
    if name == "transformers":
        from distillery.generators.sampler_transformers import (
            DEFAULT_BATCH_ROWS,
            TransformersBackend,
        )

        assert resolved is not None
        return TransformersBackend(
            resolved,
            dtype=choice.dtype,
            batch_rows=choice.batch_rows or DEFAULT_BATCH_ROWS,
            threads=choice.threads,
        )
    if name == "vllm":
        from distillery.generators.sampler_vllm import VLLMBackend

        assert resolved is not None
        return VLLMBackend(resolved)
    if name == "openai":
        from distillery.generators.sampler_openai import OpenAIBackend

        if not choice.base_url:
            raise SamplingError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(
            choice.base_url, choice.served_model or served_model, concurrency=choice.concurrency
        )
    raise SamplingError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
