"""Fisher scores: squared gradients summed over calibration examples, one example at a time
(the FISH mask, Sung et al., "Training Neural Networks with Fixed Sparse Masks", NeurIPS 2021).

The empirical Fisher information of a weight θ_j is F_j = (1/N) Σ_i (∂ L_i / ∂θ_j)², with L_i
the loss of example i alone: how much the model's predictions depend on θ_j. Keeping the
weights of largest F_j is FISH's rule for which weights to train. The sum over examples (not
over batches, whose gradients cancel across examples) is why `per_example` is set: the model
hands this scorer one loss per calibration row. The 1/N does not change the ranking and is
left out. Memory: one float32 score per target weight.

Cost, once, when the adapter is added: a sparse delta computes the sum batched
(`ctx.squared_gradients`: one forward and one backward per calibration batch, with each row's
gradient formed from the layer's input and output gradient); other targets take one backward
pass per calibration row. Either way the work includes each row's dense weight gradient
(rows × tokens × weights multiply-adds); the batched route saves the passes per row: 20.5 s
for 512 rows of MiniLM on 2 CPU cores, against 38.5 s one row at a time
(benchmarks/selection.py).
"""

from __future__ import annotations

import torch

from .base import ScoreContext, gradients, require_losses


def fisher_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    if ctx.squared_gradients is not None:
        return ctx.squared_gradients()
    losses = require_losses(ctx, "fisher")
    scores = {name: torch.zeros_like(t, dtype=torch.float32) for name, t in ctx.targets.items()}
    for loss in losses():
        for name, grad in gradients(loss, ctx.targets).items():
            scores[name] += grad.detach().float().square()
    return scores


fisher_scores.needs_data = True
fisher_scores.per_example = True
