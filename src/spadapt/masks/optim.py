"""Keep masks and moved positions consistent with the optimizer, after every step.

A forward through `weight * mask` already gives pruned entries zero gradient, and AdamW leaves
an entry that is zero with zero state at zero. When a schedule prunes in the middle of training
the pruned entries still carry Adam moments, so `keep_pruned_at_zero` registers a post-step
hook that zeroes the pruned entries of every masked weight and of its optimizer state. The same
hook lets a sparse delta that the "regrow" schedule armed move its positions, with their
values and Adam moments, once the step is taken (`MovablePositions`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .masked import MaskedWeight


@runtime_checkable
class MovablePositions(Protocol):
    """A module whose kept positions a schedule may move after an optimizer step."""

    values: nn.Parameter

    def apply_regrow(self, optimizer_state: dict | None) -> bool: ...


def keep_pruned_at_zero(model: nn.Module, optimizer: torch.optim.Optimizer):
    """Register the hook on `optimizer`; returns the handle (call `.remove()` to undo)."""
    masked = [m for m in model.modules() if isinstance(m, MaskedWeight)]
    movable = [m for m in model.modules() if isinstance(m, MovablePositions)]

    @torch.no_grad()
    def zero_pruned(opt: torch.optim.Optimizer, args, kwargs) -> None:
        for module in masked:
            if module.mask is None:
                continue
            module.weight.mul_(module.mask)
            state = opt.state.get(module.weight)
            for value in (state or {}).values():
                if torch.is_tensor(value) and value.shape == module.weight.shape:
                    value.mul_(module.mask)
        for module in movable:
            module.apply_regrow(opt.state.get(module.values))

    return optimizer.register_step_post_hook(zero_pruned)
