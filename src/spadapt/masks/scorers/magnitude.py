"""Magnitude scores |θ| (Han et al. 2015): keep the largest weights."""

from __future__ import annotations

import torch

from .base import ScoreContext


def magnitude_scores(ctx: ScoreContext) -> dict[str, torch.Tensor]:
    return {name: target.detach().abs() for name, target in ctx.targets.items()}


magnitude_scores.needs_data = False
magnitude_scores.per_example = False
