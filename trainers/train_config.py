"""The training stage's configurations (see `config/base.py`), under TRL's own names.

`TrainArgs` holds the values distillery hands to TRL: each field is named as in
`trl.SFTConfig` / `trl.DPOConfig` (and their `transformers.TrainingArguments`), or as in
TRL's `ModelConfig` for LoRA (`use_peft`, `lora_r`, ...), so a value means what TRL's
documentation says. `RSFTConfig` and `DPOConfig` add what to train on and what to call the
result. Light: the CLI imports this without transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from distillery.config.base import Split, StageConfig, at_least, check
from distillery.config.groups import DEFAULT_MODEL
from distillery.curate.pairs_config import Pairing
from distillery.curate.select_config import SelectionConfig

# Full fine-tuning of a 135M model on tens to hundreds of search targets: 1e-4 moved
# held-out pass@1 where 5e-5 for one epoch did not (benchmarks/RESULTS.md, "Effect").
RSFT_LR = 1e-4
DPO_LR = 5e-6  # TRL's DPO examples' order of magnitude for full fine-tuning


@dataclass(frozen=True)
class TrainArgs(StageConfig):
    """TRL's arguments, sized for a 135M model on a CPU; raise them on a GPU."""

    learning_rate: float = 5e-5
    """Peak learning rate (AdamW)."""
    num_train_epochs: float = 1.0
    """Passes over the data (max_steps > 0 overrides it)."""
    max_steps: int = -1
    """Optimizer steps; -1: as many as num_train_epochs takes."""
    per_device_train_batch_size: int = 8
    """Rows per step and device."""
    gradient_accumulation_steps: int = 1
    """Steps whose gradients add up before an update."""
    max_length: int = 512
    """Longest row in tokens (prompt and completion); longer rows are truncated."""
    warmup_steps: int = 0
    """Steps of linear learning-rate warm-up."""
    seed: int = 0
    """Seed of the trainer (shuffling, initialisation of LoRA weights)."""
    use_peft: bool = False
    """Train LoRA adapters (merged into the weights afterwards) instead of every weight."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA path."""
    logging_steps: int = 1
    """Log (and draw the loss curve) every this many steps."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30 % more time."""
    threads: int | None = None
    """torch threads on a CPU (default: DISTILLERY_THREADS, else measured on the model)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # None: the method's default (a bake's; see flows/bake_config.py).
        check(
            self.learning_rate is None or self.learning_rate > 0,
            f"--learning-rate must be > 0 (got {self.learning_rate})",
        )
        at_least(self.per_device_train_batch_size, 1, "per_device_train_batch_size")
        at_least(self.gradient_accumulation_steps, 1, "gradient_accumulation_steps")
        at_least(self.max_length, 16, "max_length")
        check(
            self.max_steps > 0 or (self.max_steps < 0 and self.num_train_epochs > 0),
            "train for at least one step: --max-steps > 0 or --num-train-epochs > 0",
        )
        check(
            self.threads is None or self.threads >= 0,
            f"--threads must be 0 (measure) or a positive count (got {self.threads})",
        )


@dataclass(frozen=True)
class TrainData(StageConfig):
    """What a training job learns from and what it registers."""

    base: str = DEFAULT_MODEL
    """The model to start from."""
    out: str = "trained"
    """Name of the trained model."""
    suite: str | None = None
    """Train on this suite's prompts (default: every suite)."""
    samples_of: str | None = None
    """Whose samples to learn from (default: --base)."""
    split: Split = "train"
    """The split whose prompts it trains on."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.out), "--out needs a name for the trained model")


@dataclass(frozen=True)
class RSFTConfig(SelectionConfig, TrainData, TrainArgs):
    """Rejection-sampling fine-tuning on verified samples (TRL SFTTrainer, completion-only
    loss)."""

    kind: ClassVar[str] = "rsft"
    out: str = "rsft-model"
    """Name of the trained model."""
    learning_rate: float = RSFT_LR
    """Peak learning rate (AdamW); 1e-4 moved a 135M model where 5e-5 did not."""


@dataclass(frozen=True)
class DPOConfig(TrainData, TrainArgs):
    """DPO on the chosen/rejected pairs the `pairs` stage stored (TRL DPOTrainer); beta is
    the KL leash."""

    kind: ClassVar[str] = "dpo"
    out: str = "dpo-model"
    """Name of the trained model."""
    learning_rate: float = DPO_LR
    """Peak learning rate (AdamW)."""
    beta: float = 0.1
    """KL leash to the base model: larger keeps the policy closer."""
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    """DPO's loss: sigmoid (the paper's) or ipo."""
    pairing: Pairing = "pass-fail"
    """Train on the stored pairs built this way (`distillery pairs --pairing`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.beta > 0, f"--beta must be > 0 (got {self.beta})")


TrainConfig = RSFTConfig | DPOConfig
