""""lottery": train densely first, keep what moved most, reset it and train it sparsely (LT-SFT,
Ansell et al. 2022, "Composable Sparse Fine-Tuning for Cross-Lingual Transfer"; the rewind of
Frankle & Carbin's lottery tickets, 2019).

Phase 1, the first `prune_end` × T optimizer steps: every target trains densely. A sparse
delta trains a dense delta of its whole weight (`SparseDelta.start_dense_phase`) at
`dense_lr_scale` × the learning rate, as dense fine-tuning wants a far lower rate than a
sparse delta; a bottleneck adapter trains its weights with no mask, at the adapter's rate.
At the end of step S = max(1, round(prune_end × T)), right after the optimizer step, the
positions are chosen by the size of the change:
- sparse deltas keep, in each layer, as many positions as its init budget gave it (so the
  trained tensors keep their shapes) where |dense delta| is largest; their values restart at
  zero, i.e. at the base weight (LT-SFT's reset), and the dense delta and its optimizer state
  are freed;
- bottleneck weights keep the exact budget (global or per layer) where |W_S - W_0| is
  largest and are rewound to W_0, the adapter's initialisation (reproduced from its seed).
Phase 2 trains the kept entries from there, with fresh optimizer state (as LT-SFT's second
run starts a new optimizer).

Cost: phase 1 costs what full fine-tuning of the target weights costs (a dense weight
gradient and two Adam moments per adapted weight for a sparse delta; nothing beyond a dense
adapter for a bottleneck), and the training meters count it: step time, peak memory and the
trainable parameters reported are those of the whole run. If training ends before S,
`finalize` chooses the positions the same way but keeps the trained values (no reset).
One process only: the dense phase adds parameters that are dropped in the middle of training.
"""

from __future__ import annotations

import torch

from ...config import AdapterConfig
from ..budget import topk_masks
from ..masked import MaskedWeight
from .base import require_one_process


class LotterySchedule:
    final_from_prune_end = True  # the positions are chosen at prune_end and stay

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None:
        self.config = config
        self.weights = weights  # storage key -> MaskedWeight (bottleneck adapters)
        self.deltas = deltas or {}  # storage key -> SparseDelta
        self.initial: dict[str, torch.Tensor] = {}  # bottleneck weights at init (W_0)
        self.chosen = False  # positions chosen (phase 2)
        self.choose_after_next_step = False

    def switch_step(self, total_steps: int) -> int:
        """S: the optimizer step after which the positions are chosen."""
        return max(1, round(self.config.prune_end * total_steps))

    def start(self) -> None:
        for delta in self.deltas.values():
            delta.start_dense_phase(self.config.dense_lr_scale)
        self.initial = {name: w.weight.detach().clone() for name, w in self.weights.items()}

    @torch.no_grad()
    def choose(self, optimizer_state: dict | None, rewind: bool) -> None:
        """End the dense phase: keep the entries that moved most (see the module docstring)."""
        for delta in self.deltas.values():
            delta.end_dense_phase(optimizer_state, rewind=rewind)
        if self.weights:
            moved = {name: (w.weight.detach() - self.initial[name]).abs()
                     for name, w in self.weights.items()}
            masks = topk_masks(moved, self.config.density, self.config.budget)
            for name, weight in self.weights.items():
                if rewind:
                    weight.weight.copy_(self.initial[name])
                    if optimizer_state is not None:
                        optimizer_state.pop(weight.weight, None)
                weight.set_mask(masks[name])
        self.initial = {}
        self.chosen = True
        self.choose_after_next_step = False

    def _plan(self, step: int, total_steps: int) -> None:
        """After step `step`: is the next one the switch step?"""
        if not self.chosen:
            require_one_process("lottery", "its dense phase's parameters are dropped in "
                                "the middle of training")
        self.choose_after_next_step = not self.chosen and step + 1 == \
            self.switch_step(total_steps)

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        if self.choose_after_next_step:
            self.choose(optimizer_state, rewind=True)

    def step(self, step: int, total_steps: int) -> None:
        self._plan(step, total_steps)

    def resume(self, step: int, total_steps: int) -> None:
        """A checkpoint after S holds the chosen positions (or masks) and values: drop what
        the freshly attached adapter's dense phase holds, without touching those."""
        if step >= self.switch_step(total_steps) and not self.chosen:
            for delta in self.deltas.values():
                delta.drop_dense_phase()
            self.initial = {}
            self.chosen = True
        self._plan(step, total_steps)

    def regularization(self) -> torch.Tensor | None:
        return None

    def finalize(self) -> None:
        if not self.chosen:
            self.choose(None, rewind=False)
