""""movement": prune by movement scores S = -Σ_t g_t ⊙ θ_t (Sanh et al., "Movement Pruning",
NeurIPS 2020), on the same cubic schedule as "gradual": weights moving away from zero are kept.
"""

from __future__ import annotations

import torch

from .gradual import GradualSchedule


class MovementSchedule(GradualSchedule):
    def start(self) -> None:
        for weight in self.weights.values():
            weight.track_movement()

    def scores(self) -> dict[str, torch.Tensor]:
        return {name: w.movement.clone() for name, w in self.weights.items()}

    def finalize(self) -> None:
        super().finalize()
        for weight in self.weights.values():
            weight.stop_movement()
