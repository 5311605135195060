"""DPO: preference pairs with TRL's DPOTrainer; β is the KL leash of p₀·exp(β·R)."""

from __future__ import annotations

import copy
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
from trainers.rsft_trainer import _result

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
        from transformers import PrinterCallback
        from trl import DPOConfig, DPOTrainer

        quiet_libraries()
        c = self.config
        args = DPOConfig(
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
            beta=c.beta,
            loss_type=[c.loss],
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
            **trainer_device_args(),
        )
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
        trainer.remove_callback(PrinterCallback)
        started = time.perf_counter()
        out = trainer.train()
        self.model = trainer.model
        return _result(callback, out, time.perf_counter() - started)
