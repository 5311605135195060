"""RSFT: supervised fine-tuning on verifier-accepted samples with TRL's SFTTrainer.

Rows are conversational prompt/completion; the chat template is applied by TRL and the
loss covers the completion only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillery.trainers.base import (
    RecordingCallback,
    TrainResult,
    common_args,
    lora_config,
    quiet_libraries,
    run_trainer,
    training_threads,
)
from distillery.trainers.train_config import RSFTConfig


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
        from trl import SFTConfig, SFTTrainer

        quiet_libraries()
        c = self.config
        threads = training_threads(model, c)  # before the trainer: it reseeds when built
        args = SFTConfig(**common_args(c, out_dir), completion_only_loss=True)
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
            peft_config=lora_config(c) if c.use_peft else None,
        )
        result = run_trainer(trainer, callback, threads)
        self.model = trainer.model
        return result
