""""gradual": start dense, prune by weight magnitude on a cubic schedule (Zhu & Gupta, "To prune,
or not to prune", 2017). Pruning is monotone: a pruned weight never returns.
"""

from __future__ import annotations

import torch

from ...config import AdapterConfig
from ..budget import topk_masks
from ..masked import MaskedWeight
from .base import cubic_density


class GradualSchedule:
    final_from_prune_end = True  # masks reach the final density at prune_end

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None:
        self.config = config
        self.weights = weights
        self.current_density = 1.0

    def start(self) -> None:
        pass

    def scores(self) -> dict[str, torch.Tensor]:
        return {name: w.weight.detach().abs() for name, w in self.weights.items()}

    def prune_to(self, density: float) -> None:
        scores = {
            name: torch.where(w.kept_mask(), s.float(), torch.full_like(s.float(), -float("inf")))
            for (name, w), s in zip(self.weights.items(), self.scores().values(), strict=True)
        }
        for name, mask in topk_masks(scores, density, self.config.budget).items():
            self.weights[name].set_mask(mask)
        self.current_density = density

    def step(self, step: int, total_steps: int) -> None:
        density = cubic_density(step, total_steps, self.config)
        if density is not None and density < self.current_density:
            self.prune_to(density)

    def regularization(self):
        return None

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        pass

    def resume(self, step: int, total_steps: int) -> None:
        pass

    def finalize(self) -> None:
        if self.current_density != self.config.density or any(
            w.mask is None for w in self.weights.values()
        ):
            self.prune_to(self.config.density)
