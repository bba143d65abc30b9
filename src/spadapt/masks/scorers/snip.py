"""SNIP scores |g ⊙ θ| summed over calibration batches (Lee et al., ICLR 2019).

Connection sensitivity: the first-order change of the loss when a weight is removed.
"""

from __future__ import annotations

import torch

from .base import ScoreContext, gradients, require_losses


def snip_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    losses = require_losses(ctx, "snip")
    scores = {name: torch.zeros_like(t, dtype=torch.float32) for name, t in ctx.targets.items()}
    for loss in losses():
        for name, grad in gradients(loss, ctx.targets).items():
            scores[name] += (grad * ctx.targets[name]).detach().abs().float()
    return scores


snip_scores.needs_data = True
snip_scores.per_example = False
