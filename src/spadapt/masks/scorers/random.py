"""Random scores: a seeded uniform draw per tensor (the "random" baseline of SparseAdapter).

Each tensor has its own generator seeded from (seed, tensor name), so the mask can be rebuilt
from the seed alone; storage uses this to save no positions at all for random masks.
"""

from __future__ import annotations

import torch

from .base import ScoreContext, stable_seed


def random_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    scores = {}
    for name, target in ctx.targets.items():
        generator = torch.Generator().manual_seed(stable_seed(ctx.seed, name))
        scores[name] = torch.rand(target.shape, generator=generator).to(target.device)
    return scores


random_scores.needs_data = False
random_scores.per_example = False
