"""RSFT: supervised fine-tuning on verifier-accepted samples with TRL's SFTTrainer.

Rows are conversational prompt/completion; the chat template is applied by TRL and the
loss covers the completion only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainers.base import (
    RecordingCallback,
    TrainConfig,
    TrainResult,
    lora_config,
    quiet_libraries,
    trainer_device_args,
)


@dataclass(frozen=True)
class RSFTConfig(TrainConfig):
    pass


class RSFTLauncher:
    kind = "rsft"

    def __init__(self, config: RSFTConfig) -> None:
        self.config = config

    def train(
        self,
        model: Any,
        tokenizer: Any,
        rows: list[dict[str, Any]],
        out_dir: str,
        progress: Callable[[int, int, float, float], None] | None = None,
    ) -> TrainResult:
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import SFTConfig, SFTTrainer

        quiet_libraries()
        c = self.config
        args = SFTConfig(
            output_dir=out_dir,
            learning_rate=c.learning_rate,
            num_train_epochs=c.epochs,
            max_steps=c.max_steps,
            per_device_train_batch_size=c.batch_size,
            gradient_accumulation_steps=c.grad_accum,
            max_length=c.max_length,
            warmup_steps=c.warmup_steps,
            seed=c.seed,
            logging_steps=c.logging_steps,
            activation_checkpointing=c.gradient_checkpointing,
            # We want to see a NaN loss, not have it averaged away.
            logging_nan_inf_filter=False,
            completion_only_loss=True,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
            **trainer_device_args(),
        )
        data = Dataset.from_list(
            [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        )
        callback = RecordingCallback(progress)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=lora_config(c) if c.lora else None,
        )
        trainer.remove_callback(PrinterCallback)  # our callback reports progress instead
        started = time.perf_counter()
        out = trainer.train()
        seconds = time.perf_counter() - started
        self.model = trainer.model
        return _result(callback, out, seconds)


def _result(callback: RecordingCallback, out: Any, seconds: float) -> TrainResult:
    if callback.nan_at is not None:
        return TrainResult(
            "failed",
            f"loss became NaN at step {callback.nan_at}",
            out.global_step,
            seconds,
            callback.tokens,
            callback.curve,
            callback.last,
        )
    final = {k: float(v) for k, v in (out.metrics or {}).items() if isinstance(v, int | float)}
    return TrainResult(
        "completed",
        None,
        out.global_step,
        seconds,
        callback.tokens,
        callback.curve,
        {**callback.last, **final},
    )
