"""What the TRL launchers (`rsft_trainer`, `dpo_trainer`) share: the callback that records
the loss curve, stops on NaN and drives the progress bar; TRL's common arguments; the
thread count, LoRA and device settings; and the run itself. Imports transformers: only a
launcher's `train` imports this module."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from distillery.trainers.base import TrainResult
from distillery.trainers.train_config import TrainArgs


class RecordingCallback(TrainerCallback):
    """Loss curve and token count from TRL's logs; stops the run on a NaN or inf loss."""

    def __init__(self, progress: Callable[[int, int, float, float], None] | None = None) -> None:
        self.curve: list[tuple[int, float]] = []
        self.tokens = 0
        self.nan_at: int | None = None
        self.started = time.perf_counter()
        self.last: dict[str, float] = {}
        self._progress = progress

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        logs = logs or {}
        self.last = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
        if "num_tokens" in logs:
            self.tokens = int(logs["num_tokens"])
        loss = logs.get("loss")
        if loss is None:
            return
        self.curve.append((int(state.global_step), float(loss)))
        if not math.isfinite(float(loss)):
            self.nan_at = int(state.global_step)
            control.should_training_stop = True
        if self._progress is not None:
            rate = self.tokens / max(time.perf_counter() - self.started, 1e-9)
            self._progress(int(state.global_step), int(state.max_steps), float(loss), rate)


def quiet_libraries() -> None:
    """Our progress bar reports training; the libraries' own bars and notices would bury it."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def trainer_device_args() -> dict[str, Any]:
    """TRL refuses bf16 without a GPU and needs use_cpu=True on a CPU-only machine."""
    import torch

    if torch.cuda.is_available():
        return {"use_cpu": False, "bf16": torch.cuda.is_bf16_supported(), "fp16": False}
    return {"use_cpu": True, "bf16": False, "fp16": False}


def training_threads(model: Any, config: TrainArgs) -> int | None:
    """torch threads for this run: the config's, DISTILLERY_THREADS, or measured on `model`.

    None on a GPU with nothing asked for: the GPU does the work, torch is left alone. Call it
    before the trainer is built: the probe's forward and backward run under a forked RNG and
    drop their gradients, and the trainer seeds everything afresh when it is built.
    """
    import torch

    from distillery.generators.threads import fixed_threads, measured_threads, training_probe

    fixed = fixed_threads(config.threads)
    if fixed is not None:
        return fixed
    if torch.cuda.is_available():
        return None
    with torch.random.fork_rng(devices=[]):
        best, _ = measured_threads(training_probe(model), "training")
    return best


def lora_config(config: TrainArgs) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


# TrainArgs fields handed to TRL under the same name.
TRL_ARGS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "warmup_steps",
    "seed",
    "logging_steps",
)


def common_args(config: TrainArgs, out_dir: str) -> dict[str, Any]:
    """The TrainingArguments values SFTConfig and DPOConfig share."""
    return {
        "output_dir": out_dir,
        **{name: getattr(config, name) for name in TRL_ARGS},
        # TRL 1.x's name for transformers' gradient_checkpointing.
        "activation_checkpointing": config.gradient_checkpointing,
        # We want to see a NaN loss, not have it averaged away.
        "logging_nan_inf_filter": False,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **trainer_device_args(),
    }


def run_trainer(
    trainer: Any, callback: RecordingCallback, threads: int | None = None
) -> TrainResult:
    """Train; a NaN loss makes the result `failed` with the step it happened at.

    `threads` (from `training_threads`) is set just before training, in the thread that
    trains, and recorded as `final["threads"]`.
    """
    import torch
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our callback reports progress instead
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - started
    used = {"threads": float(torch.get_num_threads())}
    if callback.nan_at is not None:
        return TrainResult(
            "failed",
            f"loss became NaN at step {callback.nan_at}",
            out.global_step,
            seconds,
            callback.tokens,
            callback.curve,
            {**callback.last, **used},
        )
    final = {k: float(v) for k, v in (out.metrics or {}).items() if isinstance(v, int | float)}
    return TrainResult(
        "completed",
        None,
        out.global_step,
        seconds,
        callback.tokens,
        callback.curve,
        {**callback.last, **final, **used},
    )
