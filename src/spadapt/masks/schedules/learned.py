""""learned": hard-concrete L0 gates on every weight (Louizos et al., ICLR 2018), trained with the
task loss plus `l0_lambda` × (expected fraction of open gates); `finalize` keeps the top-k gate
logits to the exact budget and folds the gates' deterministic values into the weights.
"""

from __future__ import annotations

import torch

from ...config import AdapterConfig
from ..budget import topk_masks
from ..masked import MaskedWeight, expected_l0


class LearnedSchedule:
    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight]) -> None:
        self.config = config
        self.weights = weights
        self.total = sum(w.weight.numel() for w in weights.values())

    def start(self) -> None:
        for weight in self.weights.values():
            weight.enable_gates(self.config.l0_beta)

    def step(self, step: int, total_steps: int) -> None:
        pass

    def regularization(self) -> torch.Tensor | None:
        gated = [w for w in self.weights.values() if w.log_alpha is not None]
        if not gated:
            return None
        open_gates = sum(expected_l0(w.log_alpha, w.gate_beta) for w in gated)
        return self.config.l0_lambda * open_gates / self.total

    def finalize(self) -> None:
        gated = {name: w for name, w in self.weights.items() if w.log_alpha is not None}
        if not gated:
            return
        scores = {name: w.log_alpha.detach() for name, w in gated.items()}
        masks = topk_masks(scores, self.config.density, self.config.budget)
        for name, weight in gated.items():
            weight.fold_gates()
            weight.set_mask(masks[name])
