"""RSFT: supervised fine-tuning on verifier-accepted samples with TRL's SFTTrainer.

Rows are conversational prompt/completion; the chat template is applied by TRL and the
loss covers the completion only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillery.trainers.base import TrainResult
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

        from distillery.trainers import trl_run  # transformers: imported only to train

        trl_run.quiet_libraries()
        c = self.config
        threads = trl_run.training_threads(model, c)  # before the trainer: it reseeds when built
        args = SFTConfig(**trl_run.common_args(c, out_dir), completion_only_loss=True)
        data = Dataset.from_list(
            [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        )
        callback = trl_run.RecordingCallback(progress)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=trl_run.lora_config(c) if c.use_peft else None,
        )
        result = trl_run.run_trainer(trainer, callback, threads)
        self.model = trainer.model
        return result
