"""DPO: preference pairs with TRL's DPOTrainer; β is the KL leash of p₀·exp(β·R)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from distillery.trainers.base import TrainResult
from distillery.trainers.train_config import DPOConfig


class DPOLauncher:
    kind = "dpo"

    def __init__(self, config: DPOConfig) -> None:
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
        from trl import DPOConfig as TRLDPOConfig
        from trl import DPOTrainer

        from distillery.trainers import trl_run  # transformers: imported only to train

        trl_run.quiet_libraries()
        c = self.config
        threads = trl_run.training_threads(model, c)  # before the trainer: it reseeds when built
        args = TRLDPOConfig(**trl_run.common_args(c, out_dir), beta=c.beta, loss_type=[c.loss_type])
        data = Dataset.from_list(
            [
                {"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
                for r in rows
            ]
        )
        callback = trl_run.RecordingCallback(progress)
        # The reference policy is the model as it is now: a frozen copy (with LoRA, the
        # adapter-disabled base serves instead and no copy is needed).
        ref_model = None if c.use_peft else copy.deepcopy(model).eval()
        trainer = DPOTrainer(
            model=model,
            ref_model=ref_model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=trl_run.lora_config(c) if c.use_peft else None,
        )
        result = trl_run.run_trainer(trainer, callback, threads)
        self.model = trainer.model
        return result
