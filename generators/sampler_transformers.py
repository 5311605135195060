"""transformers on CPU (or one GPU): chat template, left padding, one prefill per prompt.

The engine is `decode_loop.generate_rows`; this module turns requests into token batches
and tokens back into text. bf16 is the CPU default because it measured fastest here
(see benchmarks/RESULTS.md). On a CPU the torch thread count is measured once the model is
loaded unless one is given (`generators/threads.py`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from distillery.generators import model_registry
from distillery.generators.base import Completion, ProgressFn, SampleRequest, SamplingParams
from distillery.generators.decode_loop import Decode, generate_rows
from distillery.generators.threads import (
    SAMPLING_PROBE_ROWS,
    fixed_threads,
    measured_threads,
    sampling_probe,
)

DEFAULT_BATCH_ROWS = 256
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


@dataclass
class TransformersBackend:
    resolved: model_registry.ResolvedModel
    dtype: str = "bf16"
    batch_rows: int = DEFAULT_BATCH_ROWS
    threads: int | None = None  # None or 0: DISTILLERY_THREADS, else measured (CPU only)
    name: str = "transformers"
    threads_used: int | None = field(default=None, init=False)  # None: torch left alone
    _model: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}")
        # Checked before the load, so a bad --threads or DISTILLERY_THREADS fails at once.
        fixed = fixed_threads(self.threads)
        if fixed is not None:
            torch.set_num_threads(fixed)  # before the load: dequantizing uses the threads too
            self.threads_used = fixed
        model, tok = model_registry.load(self.resolved, dtype=DTYPES[self.dtype])
        if torch.cuda.is_available():
            model = model.to("cuda")  # the GPU does the work; torch's CPU threads don't matter
        elif fixed is None:
            probe = sampling_probe(model, min(self.batch_rows, SAMPLING_PROBE_ROWS))
            self.threads_used, _ = measured_threads(probe, "sampling")
            torch.set_num_threads(self.threads_used)
        self._model, self._tokenizer = model, tok

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def encode(self, request: SampleRequest) -> list[int]:
        enc = self._tokenizer.apply_chat_template(
            request.chat, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(enc["input_ids"])

    def stop_ids(self) -> list[int]:
        ids = {self._tokenizer.eos_token_id}
        gen_eos = getattr(self._model.generation_config, "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        return sorted(i for i in ids if i is not None)

    def batches(
        self, requests: Sequence[SampleRequest], encoded: Sequence[list[int]]
    ) -> Iterator[list[int]]:
        """Request indices grouped into batches of about `batch_rows` rows.

        Sorted by prompt length so a batch pads little; a prompt's rows never split, so
        it is prefilled once.
        """
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        batch: list[int] = []
        rows = 0
        for i in order:
            n = len(requests[i].indices)
            if batch and rows + n > self.batch_rows:
                yield batch
                batch, rows = [], 0
            batch.append(i)
            rows += n
        if batch:
            yield batch

    def generate(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: ProgressFn | None = None,
    ) -> Iterator[list[Completion]]:
        # Set again per call: training in the same process, or a shard task on another
        # thread, may have changed it since the backend was opened.
        if self.threads_used and torch.get_num_threads() != self.threads_used:
            torch.set_num_threads(self.threads_used)
        encoded = [self.encode(r) for r in requests]
        stop = self.stop_ids()
        pad = self._tokenizer.pad_token_id
        pad = stop[0] if pad is None else pad
        for batch in self.batches(requests, encoded):
            reqs = [requests[i] for i in batch]
            keys = np.array(
                [params.row_seed(r.prompt_id, idx, r.context) for r in reqs for idx in r.indices],
                dtype=np.uint64,
            )
            started = time.perf_counter()
            rows = generate_rows(
                self._model,
                [encoded[i] for i in batch],
                [len(r.indices) for r in reqs],
                keys,
                Decode(
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_new_tokens=params.max_new_tokens,
                    eos_ids=stop,
                    pad_id=pad,
                ),
                on_step=(lambda n: progress(0, n)) if progress else None,
            )
            seconds = time.perf_counter() - started
            texts = self._tokenizer.batch_decode([r.tokens for r in rows], skip_special_tokens=True)
            total_tokens = sum(len(r.tokens) for r in rows) or 1
            out: list[Completion] = []
            it = iter(zip(rows, texts, strict=True))
            for i, req in zip(batch, reqs, strict=True):
                for idx in req.indices:
                    row, text = next(it)
                    out.append(
                        Completion(
                            prompt_id=req.prompt_id,
                            idx=idx,
                            text=text,
                            prompt_tokens=len(encoded[i]),
                            completion_tokens=len(row.tokens),
                            finish_reason=row.finish_reason,
                            # The batch's wall time, shared out by tokens produced.
                            latency_s=seconds * len(row.tokens) / total_tokens,
                        )
                    )
            if progress:
                progress(len(out), 0)
            yield out

    def close(self) -> None:
        self._model = None
