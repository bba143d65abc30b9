""""regrow": kept positions are dropped and regrown during training (SpIEL, Ansell et al.
2024, "Scaling Sparse Fine-Tuning to Large Language Models"; the schedule of RigL, Evci et al.
2020), for a sparse delta's positions and a bottleneck adapter's masks.

Every `regrow_every` optimizer steps before `prune_end`, each sparse delta (each masked
bottleneck weight) drops the fraction f_t of its kept positions whose values moved least
(smallest |Δ|, smallest |w|) and regrows as many at the positions not kept where the loss
gradient of the frozen weight (of the effective bottleneck weight) is largest in magnitude on
that step's batch (summed over its micro-batches); regrown values start at zero with zero
Adam moments, as do the dropped ones' slots. f_t = regrow_fraction · (1 + cos(π t / T)) / 2
with T = prune_end × total steps, so the positions settle before training ends.

Each layer keeps its own number of positions (the one chosen at init, global or per layer),
so the budget is exact at every step and the trained tensors keep their shapes: the optimizer
holds the same parameters throughout. How it runs: after step t - 1 this schedule arms each
delta and masked weight for step t; during step t's backward an armed delta forms its
weight's dense gradient once, keeps only its top candidates and frees it (no dense gradient
outlives the layer's backward, none is kept between steps); an armed masked weight keeps the
gradient of its effective weight, the size of the adapter weight itself. Right after the
optimizer step (the hook of `keep_pruned_at_zero` calls `after_optimizer_step`) each moves its
positions and their optimizer state. Cost: on a regrow step only, one dense weight-gradient
product per adapted layer for a sparse delta, what a full fine-tuning step pays for it.

Positions live in the adapter's buffers, so checkpoints carry them; `resume` re-arms what
regrows at the next step. One process only: with several, each would regrow on its own batch.
"""

from __future__ import annotations

import math

import torch

from ...config import AdapterConfig
from ..masked import MaskedWeight
from .base import require_one_process


class RegrowSchedule:
    final_from_prune_end = True  # positions move until prune_end, then stay

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None:
        self.config = config
        self.deltas = deltas or {}  # storage key -> SparseDelta (its positions move)
        self.weights = weights  # tensor name -> MaskedWeight (its mask moves)

    def fraction(self, step: int, total_steps: int) -> float:
        """f_t: the share of each delta's positions replaced at step `step` (0 if none)."""
        end = round(self.config.prune_end * total_steps)
        if step % self.config.regrow_every != 0 or step >= end or step < 1:
            return 0.0
        return self.config.regrow_fraction * (1 + math.cos(math.pi * step / end)) / 2

    def _arm(self, step: int, total_steps: int) -> None:
        fraction = self.fraction(step, total_steps)
        if fraction > 0:
            require_one_process("regrow", "with several, each would regrow on its own batch")
        for delta in self.deltas.values():
            delta.arm_regrow(round(fraction * delta.values.numel()))
        for weight in self.weights.values():
            weight.arm_regrow(round(fraction * weight.kept))

    def start(self) -> None:
        pass

    def step(self, step: int, total_steps: int) -> None:
        self._arm(step + 1, total_steps)

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        for delta in self.deltas.values():
            delta.apply_regrow(optimizer_state.get(delta.values))
        for weight in self.weights.values():
            weight.apply_regrow(optimizer_state.get(weight.weight))

    def resume(self, step: int, total_steps: int) -> None:
        self._arm(step + 1, total_steps)

    def regularization(self) -> torch.Tensor | None:
        return None

    def finalize(self) -> None:
        for delta in self.deltas.values():
            delta.arm_regrow(0)
        for weight in self.weights.values():
            weight.arm_regrow(0)
