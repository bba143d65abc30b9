"""Keep masks and moved positions consistent with the optimizer, after every step.

A forward through `weight * mask` already gives pruned entries zero gradient, and AdamW leaves
an entry that is zero with zero state at zero. When a schedule prunes in the middle of training
the pruned entries still carry Adam moments, so `keep_pruned_at_zero` registers a post-step
hook that zeroes the pruned entries of every masked weight and of its optimizer state. The same
hook then lets the model's active schedule act on the step just taken, with the optimizer's
state in hand (`StepObserver`): "regrow" moves positions with their values and Adam moments,
"lottery" ends its dense phase and drops that phase's optimizer state.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .masked import MaskedWeight


@runtime_checkable
class StepObserver(Protocol):
    """A model whose schedule acts right after each optimizer step (`AdaptedModel`)."""

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        """optimizer_state: the optimizer's per-parameter state (parameter -> dict)."""


def keep_pruned_at_zero(model: nn.Module, optimizer: torch.optim.Optimizer):
    """Register the hook on `optimizer`; returns the handle (call `.remove()` to undo)."""
    masked = [m for m in model.modules() if isinstance(m, MaskedWeight)]

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
        if isinstance(model, StepObserver):
            model.after_optimizer_step(opt.state)

    return optimizer.register_step_post_hook(zero_pruned)
