"""GraSP scores θ ⊙ Hg (Wang et al., "Picking Winning Tickets Before Training by Preserving
Gradient Flow", ICLR 2020).

GraSP removes the weights with the largest S(−θ) = −θ ⊙ Hg, whose removal least reduces the
gradient norm; we return θ ⊙ Hg, so that, as for every scorer here, higher means keep.
g is the gradient summed over the calibration batches; Hg is computed by double back-prop
(with the math attention kernel: fused attention kernels have no double backward).
"""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .base import ScoreContext, gradients, require_losses


def grasp_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    losses = require_losses(ctx, "grasp")
    total_grad = {name: torch.zeros_like(t) for name, t in ctx.targets.items()}
    for loss in losses():
        for name, grad in gradients(loss, ctx.targets).items():
            total_grad[name] += grad.detach()
    hessian_grad = {name: torch.zeros_like(t) for name, t in ctx.targets.items()}
    with sdpa_kernel([SDPBackend.MATH]):
        for loss in losses():
            grads = gradients(loss, ctx.targets, create_graph=True)
            dot = sum((grads[name] * total_grad[name]).sum() for name in grads)
            if not dot.requires_grad:  # the loss does not depend on the targets
                continue
            for name, hg in gradients(dot, ctx.targets).items():
                hessian_grad[name] += hg.detach()
    return {
        name: (target.detach() * hessian_grad[name]).float()
        for name, target in ctx.targets.items()
    }


grasp_scores.needs_data = True
grasp_scores.per_example = False
