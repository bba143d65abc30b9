"""The methods the benchmarks compare, each built on a fresh MiniLM with one training step.

`COMPETITORS` maps a short name to a builder. Every competitor trains the same way: AdamW over
its trainable parameters (the classification head included), loss + the method's regulariser,
backward, optimizer step, zero grad; spadapt methods also keep pruned weights at zero and step
their mask schedule, as `spadapt.train` does.

- floor: the frozen-base floor. Nothing trainable but the head, yet the backward pass runs
  through the whole frozen model to its input embeddings: what every adapter that sits in the
  first layer must pay at least, so nothing sparse can be cheaper.
- full, lora (PEFT LoRA r=8 on query/key/value/dense, as the `lora` recipe), shira (PEFT SHiRA,
  random support), supertuning (PEFT Super-Tuning, magnitude support), both on the same linear
  layers and at about the trained values of `sparse_delta`.
- adapter, sparse, large_sparse, l0, sparse_delta: spadapt's builtin recipes (sparse at the
  pfeiffer placement).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spadapt import AdaptedModel
from spadapt.arch import head_modules
from spadapt.masks.optim import keep_pruned_at_zero
from spadapt.peft_methods import linear_targets_regex, shira_rank
from spadapt.poc import build_model
from spadapt.recipe import load_recipe
from spadapt.train.levers import autocast

# Steps the L0 schedule is told it has: long enough that benchmarks stay in its learning phase.
SCHEDULE_STEPS = 10_000
SPARSE_DELTA_DENSITY = 0.01  # the sparse_delta recipe's density; SHiRA/Super-Tuning match it


@dataclass
class Trainee:
    name: str  # competitor name
    model: nn.Module  # the model being trained
    optimizer: torch.optim.Optimizer | None  # AdamW over the trainable parameters (None:
    #                                            nothing is trained, as in a decoder's floor)
    steps: int = 0  # optimizer steps taken
    precision: str = "fp32"  # "bf16": the forward under bf16 autocast (spadapt.train.levers)

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        """One training step on `batch`; returns the loss."""
        model = self.model
        with autocast(self.precision, "cpu"):
            loss = model(**batch).loss
            total = loss
            if isinstance(model, AdaptedModel):
                regularization = model.regularization_loss()
                if regularization is not None:
                    total = loss + regularization
        total.backward()
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        if isinstance(model, AdaptedModel):
            model.step_schedule(self.steps, SCHEDULE_STEPS)
        return float(loss.detach())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def freeze_except_head(base: nn.Module) -> nn.Module:
    """`base` with only its task head (the family's top-level head modules) trainable."""
    heads = head_modules(base, None)
    if not heads:
        raise ValueError(f"{type(base).__name__} has no task head spadapt knows")
    for name, parameter in base.named_parameters():
        parameter.requires_grad_(name.split(".", 1)[0] in heads)
    return base


def carry_gradients_to_inputs(model: nn.Module) -> nn.Module:
    """`model` with its input embeddings' output requiring grad, so backward runs through the
    whole frozen model to its inputs: what an adapter in the first layer pays at least."""
    model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: output.requires_grad_(True))
    return model


def build_floor(base: nn.Module, calibration: list[dict]) -> nn.Module:
    """Frozen base + trainable head, with gradients carried back to the input embeddings."""
    return carry_gradients_to_inputs(freeze_except_head(base))


def linear_target_layers(base: nn.Module) -> list[nn.Module]:
    """The linear layers `linear_targets_regex` names."""
    pattern = re.compile(linear_targets_regex(base))
    return [m for n, m in base.named_modules() if pattern.fullmatch(n)]


def build_shira(base: nn.Module, calibration: list[dict]) -> nn.Module:
    from peft import ShiraConfig, get_peft_model

    config = ShiraConfig(task_type="SEQ_CLS", r=shira_rank(base, SPARSE_DELTA_DENSITY),
                         random_seed=0, target_modules=linear_targets_regex(base))
    return get_peft_model(base, config)


def build_supertuning(base: nn.Module, calibration: list[dict]) -> nn.Module:
    from peft import SupertuningConfig, get_peft_model

    config = SupertuningConfig(task_type="SEQ_CLS", sparsity=1 - SPARSE_DELTA_DENSITY,
                               target_modules=linear_targets_regex(base))
    return get_peft_model(base, config)


def label_names(base: nn.Module) -> list[str]:
    """The class names of `base`'s head, in label-id order."""
    return [base.config.id2label[i] for i in range(base.config.num_labels)]


def recipe_builder(recipe: str, **adapter) -> Callable[[nn.Module, list[dict]], nn.Module]:
    """A builder of builtin recipe `recipe`, with `adapter` settings over its own."""
    def build(base: nn.Module, calibration: list[dict]) -> nn.Module:
        template = load_recipe(recipe)
        if adapter:
            template = dataclasses.replace(template, adapter={**template.adapter, **adapter})
        return build_model(template, base, label_names(base), calibration, seed=0)

    build.__name__ = f"build_{recipe}"
    return build


# name -> (description, builder(base, calibration batches) -> model to train)
COMPETITORS: dict[str, tuple[str, Callable[[nn.Module, list[dict]], nn.Module]]] = {
    "floor": ("frozen-base floor (head only, backward to the inputs)", build_floor),
    "full": ("full fine-tuning", recipe_builder("full")),
    "lora": ("PEFT LoRA r=8 (query/key/value/dense)", recipe_builder("lora")),
    "shira": ("PEFT SHiRA (all linear layers, ~1% values)", build_shira),
    "supertuning": ("PEFT Super-Tuning (all linear layers, 1%)", build_supertuning),
    "adapter": ("spadapt dense adapter (Pfeiffer r=64)", recipe_builder("adapter")),
    # at the pfeiffer site, where the recorded costs were measured; the recipe's post_ln site
    # has the same shapes and products, and its backward stops one LayerNorm earlier
    "sparse": ("spadapt sparse adapter (r=64, SNIP, density 0.2)",
               recipe_builder("sparse", placement="pfeiffer")),
    "large_sparse": ("spadapt large-sparse (r=320, SNIP, density 0.2)",
                     recipe_builder("large_sparse")),
    "l0": ("spadapt learned mask (L0 gates, r=64)", recipe_builder("l0")),
    "sparse_delta": ("spadapt sparse_delta (density 0.01, all linear layers)",
                     recipe_builder("sparse_delta")),
}


def make_trainee(name: str, base: nn.Module, calibration: list[dict],
                 learning_rate: float = 1e-3) -> Trainee:
    """Competitor `name` built on a copy of `base`, with its optimizer."""
    if name not in COMPETITORS:
        raise KeyError(f"unknown competitor {name!r}; known: {list(COMPETITORS)}")
    return trainee_from(name, COMPETITORS[name][1], base, calibration, learning_rate)


def trainee_from(name: str, build: Callable[[nn.Module, list[dict]], nn.Module],
                 base: nn.Module, calibration: list[dict],
                 learning_rate: float = 1e-3) -> Trainee:
    """`build` on a copy of `base` (seed 0), in training mode, with AdamW over what it trains
    (and, for spadapt models, masks kept at zero and positions moved after each step)."""
    torch.manual_seed(0)
    model = build(copy.deepcopy(base), calibration)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate) if trainable else None
    if isinstance(model, AdaptedModel) and optimizer is not None:
        keep_pruned_at_zero(model, optimizer)
    return Trainee(name, model, optimizer)
