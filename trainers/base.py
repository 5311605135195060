"""What every training launcher shares: the config fields, the result, the callback that
records the loss curve, stops on NaN and drives the progress bar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from transformers import TrainerCallback


@dataclass(frozen=True)
class TrainConfig:
    """Defaults sized for a 135M model on a CPU; raise them on a GPU."""

    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup_steps: int = 0
    seed: int = 0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    logging_steps: int = 1
    # Off by default: a 135M model fits easily, and recomputing activations costs ~30 %.
    gradient_checkpointing: bool = False
    # torch threads on a CPU; None or 0: DISTILLERY_THREADS, else measured on the model.
    # Not part of a job's identity (trainers/training_job.py); the count used is in `final`.
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("learning rate must be > 0 and batch size / grad accum >= 1")
        if self.max_steps == 0 or (self.max_steps < 0 and self.epochs <= 0):
            raise ValueError("train for at least one step: --max-steps > 0 or --epochs > 0")
        if self.threads is not None and self.threads < 0:
            raise ValueError(
                f"--threads must be 0 (measure) or a positive count (got {self.threads})"
            )


@dataclass
class TrainResult:
    status: str  # completed | failed
    reason: str | None
    steps: int
    seconds: float
    tokens: int
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class Launcher(Protocol):
    """What a training stage calls: RSFT (`rsft_trainer`) and DPO (`dpo_trainer`) both."""

    kind: str

    def train(
        self,
        model: Any,
        tokenizer: Any,
        rows: list[dict[str, Any]],
        out_dir: str,
        progress: Callable[[int, int, float, float], None] | None = None,
    ) -> TrainResult: ...


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


def training_threads(model: Any, config: TrainConfig) -> int | None:
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


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def common_args(config: TrainConfig, out_dir: str) -> dict[str, Any]:
    """The TrainingArguments values SFTConfig and DPOConfig share."""
    return {
        "output_dir": out_dir,
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "max_length": config.max_length,
        "warmup_steps": config.warmup_steps,
        "seed": config.seed,
        "logging_steps": config.logging_steps,
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
