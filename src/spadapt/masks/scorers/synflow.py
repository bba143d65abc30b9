"""SynFlow scores (Tanaka et al., "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020), on the adapter's own linear chain.

For each chain of weights (a bottleneck's down then up projection) the synaptic flow is
R = 1ᵀ |W_L| ⋯ |W_1| 1 and a weight's score is |θ ⊙ ∂R/∂θ|. Following the paper, pruning is
iterative: `synflow_iterations` rounds, each keeping density^(t/T) of the weights, so layer
collapse is avoided. Data-free; masked-out weights score -inf so they stay out.
"""

from __future__ import annotations

import torch

from ..budget import topk_masks
from .base import ScoreContext


def _flow_scores(ctx: ScoreContext, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    weights = {
        name: (t.detach().abs().double() * masks[name]).requires_grad_(True)
        for name, t in ctx.targets.items()
    }
    flow = torch.zeros((), dtype=torch.float64)
    for chain in ctx.chains:
        signal = torch.ones(1, weights[chain[0]].shape[1], dtype=torch.float64)
        for name in chain:
            signal = signal @ weights[name].t()
        flow = flow + signal.sum()
    grads = torch.autograd.grad(flow, list(weights.values()))
    return {
        name: torch.where(masks[name], (w * g).abs(), torch.full_like(w, -float("inf")))
        for (name, w), g in zip(weights.items(), grads, strict=True)
    }


def synflow_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    if not ctx.chains:
        raise ValueError("scorer 'synflow' needs weight chains; only bottleneck adapters have them")
    masks = {name: torch.ones_like(t, dtype=torch.bool) for name, t in ctx.targets.items()}
    scores = {}
    for step in range(1, ctx.iterations + 1):
        scores = _flow_scores(ctx, masks)
        if step < ctx.iterations:
            masks = topk_masks(scores, ctx.density ** (step / ctx.iterations), ctx.budget)
    return {name: s.float() for name, s in scores.items()}


synflow_scores.needs_data = False
synflow_scores.per_example = False
