"""`TrainConfig`: how an adapter (or a full model) is trained. Every field has a comment, so
`spadapt train --help` and recipes can be read as documentation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import SpadaptError


class TrainConfigError(SpadaptError):
    """A training setting that cannot work."""


@dataclass
class TrainConfig:
    learning_rate: float = 1e-3  # peak AdamW learning rate
    head_learning_rate: float | None = None  # for a task head (classifier/score); None = same
    weight_decay: float = 0.01  # AdamW decoupled weight decay (pruned weights stay zero)
    epochs: int = 3  # passes over the training data
    max_steps: int | None = None  # cap on optimizer steps (None = epochs decide)
    batch_size: int = 32  # examples per optimizer step per process (before accumulation)
    eval_batch_size: int = 64  # examples per evaluation forward
    gradient_accumulation: int = 1  # micro-batches per optimizer step
    warmup_ratio: float = 0.1  # fraction of steps with linear warm-up, then linear decay
    max_length: int = 128  # tokens per example after truncation
    early_stopping_patience: int | None = 2  # evaluations without improvement before stopping
    evals_per_epoch: int = 1  # evaluations per epoch (the last one at the epoch's end)
    checkpoint_every: int = 50  # optimizer steps between checkpoints (0 = at evaluations only)
    log_every: int = 8  # optimizer steps between train-loss rows in the history (0 = none)
    seed: int = 0  # seeds data order, dropout and initialisation
    progress: bool = True  # show a progress bar with loss and examples/s
    log_csv: bool = True  # write metrics.csv
    log_tensorboard: bool = True  # write TensorBoard event files under tensorboard/

    def __post_init__(self) -> None:
        numbers = ("learning_rate", "head_learning_rate", "weight_decay", "warmup_ratio",
                   "max_steps", "checkpoint_every", "log_every")
        for name in numbers:  # a value from YAML or --set may be a string or a list
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise TrainConfigError(f"{name} must be a number, got {value!r}")
        positive = ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation",
                    "max_length", "evals_per_epoch")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must be a positive integer, "
                                       f"got {getattr(self, name)!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainConfigError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        for name in ("learning_rate", "head_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise TrainConfigError(f"{name} must be > 0, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every < 0 or self.log_every < 0:
            raise TrainConfigError("checkpoint_every and log_every must be >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
