"""`TrainConfig`: how an adapter (or a full model) is trained. Every field carries its help in
its metadata, so `spadapt train --help` and recipes can be read as documentation; types and
bounds are checked by pydantic (`spadapt.validation`), so "1e-3" from YAML is a float and a
wrong value is an error that names the field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from ..errors import SpadaptError
from ..helptext import described
from ..validation import coerce_fields

Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


class TrainConfigError(SpadaptError):
    """A training setting that cannot work."""


@dataclass
class TrainConfig:
    learning_rate: Positive = described(1e-3, help="peak AdamW learning rate")
    head_learning_rate: Positive | None = described(
        None, help="for a task head (classifier/score); None = same")
    weight_decay: float = described(
        0.01, help="AdamW decoupled weight decay (pruned weights stay zero)")
    epochs: PositiveInt = described(3, help="passes over the training data")
    max_steps: PositiveInt | None = described(
        None, help="cap on optimizer steps (None = epochs decide)")
    batch_size: PositiveInt = described(
        32, help="examples per optimizer step per process (before accumulation)")
    eval_batch_size: PositiveInt = described(64, help="examples per evaluation forward")
    gradient_accumulation: PositiveInt = described(1, help="micro-batches per optimizer step")
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = described(
        0.1, help="fraction of steps with linear warm-up, then linear decay")
    max_length: PositiveInt = described(128, help="tokens per example after truncation")
    early_stopping_patience: Count | None = described(
        2, help="evaluations without improvement before stopping")
    evals_per_epoch: PositiveInt = described(
        1, help="evaluations per epoch (the last one at the epoch's end)")
    checkpoint_every: Count = described(
        50, help="optimizer steps between checkpoints (0 = at evaluations only)")
    log_every: Count = described(
        8, help="optimizer steps between train-loss rows in the history (0 = none)")
    gradient_checkpointing: bool = described(
        False, help="recompute the base's activations in backward (transformers' gradient "
        "checkpointing, non-reentrant): less memory, more time")
    precision: Literal["fp32", "bf16"] = described(
        "fp32", help="bf16: the training and evaluation forwards under bf16 autocast "
        "(torch.autocast, as Accelerate's mixed precision; CPU and CUDA); trained values, "
        "optimizer state, losses and metrics stay fp32")
    base_quantization: Literal["none", "int8", "nf4"] = described(
        "none", help="int8: the frozen base's linear weights held in int8 (torchao weight-only, "
        "CPU and CUDA; adapters, heads and the output embedding stay fp32; merging is then "
        "refused); nf4 needs bitsandbytes on a CUDA GPU")
    seed: int = described(0, help="seeds data order, dropout and initialisation")
    progress: bool = described(True, help="show a progress bar with loss and examples/s")
    log_csv: bool = described(True, help="write metrics.csv")
    log_tensorboard: bool = described(
        True, help="write TensorBoard event files under tensorboard/")

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in coerce_fields(TrainConfig, values, TrainConfigError).items():
            setattr(self, name, value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
