"""DPO: preference pairs with TRL's DPOTrainer; β is the KL leash of p₀·exp(β·R)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distillery.trainers.base import (
    RecordingCallback,
    TrainConfig,
    TrainResult,
    common_args,
    lora_config,
    quiet_libraries,
    run_trainer,
    training_threads,
)

LOSSES = ("sigmoid", "ipo")


@dataclass(frozen=True)
class DPOTrainConfig(TrainConfig):
    learning_rate: float = 5e-6
    beta: float = 0.1
    loss: str = "sigmoid"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)} (got {self.loss!r})")
        if self.beta <= 0:
            raise ValueError(f"--beta must be > 0 (got {self.beta})")


class DPOLauncher:
    kind = "dpo"

    def __init__(self, config: DPOTrainConfig) -> None:
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
        from trl import DPOConfig, DPOTrainer

        quiet_libraries()
        c = self.config
        threads = training_threads(model, c)  # before the trainer: it reseeds when built
        args = DPOConfig(**common_args(c, out_dir), beta=c.beta, loss_type=[c.loss])
        data = Dataset.from_list(
            [
                {"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
                for r in rows
            ]
        )
        callback = RecordingCallback(progress)
        # The reference policy is the model as it is now: a frozen copy (with LoRA, the
        # adapter-disabled base serves instead and no copy is needed).
        ref_model = None if c.lora else copy.deepcopy(model).eval()
        trainer = DPOTrainer(
            model=model,
            ref_model=ref_model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=lora_config(c) if c.lora else None,
        )
        result = run_trainer(trainer, callback, threads)
        self.model = trainer.model
        return result
