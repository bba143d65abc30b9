""""learned": hard-concrete L0 gates on every weight (Louizos et al., ICLR 2018), trained with the
task loss plus `l0_lambda` × (expected fraction of open gates).

At `prune_end` of training the gates are hardened: the top-k gate logits (the exact budget)
become the mask, the gates' deterministic values are folded into the weights and the gates are
dropped, so the rest of training fine-tunes the kept weights under their final mask. Cutting to
the budget only after the last step instead left no step to recover from the cut: in 64-step
runs the gate logits had barely separated, and an L0 adapter cut from ~90% open to 20% at the
end scored the majority class.
"""

from __future__ import annotations

import torch

from ...config import AdapterConfig
from ..budget import topk_masks
from ..masked import MaskedWeight, expected_l0


class LearnedSchedule:
    final_from_prune_end = True  # masks reach the final density at prune_end

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None:
        self.config = config
        self.weights = weights
        self.total = sum(w.weight.numel() for w in weights.values())

    def start(self) -> None:
        for weight in self.weights.values():
            weight.enable_gates(self.config.l0_beta)

    def _gated(self) -> dict[str, MaskedWeight]:
        """The weights that still have gates (all of them until hardening, none after)."""
        return {name: w for name, w in self.weights.items() if w.log_alpha is not None}

    @property
    def current_density(self) -> float:
        """1.0 while gated, the configured density once hardened (saved in checkpoints)."""
        return 1.0 if self._gated() else self.config.density

    @current_density.setter
    def current_density(self, density: float) -> None:
        """Restore from a checkpoint: one taken after hardening already holds the folded
        weights and final masks, so only the gates are dropped."""
        if density < 1.0:
            for weight in self.weights.values():
                weight.log_alpha = None

    def step(self, step: int, total_steps: int) -> None:
        if step >= round(self.config.prune_end * total_steps):
            self.harden()

    def regularization(self) -> torch.Tensor | None:
        gated = self._gated().values()
        if not gated:
            return None
        open_gates = sum(expected_l0(w.log_alpha, w.gate_beta) for w in gated)
        return self.config.l0_lambda * open_gates / self.total

    def harden(self) -> None:
        """Keep the top-k gate logits to the exact budget; fold the gates into the weights.
        A no-op once hardened."""
        gated = self._gated()
        if not gated:
            return
        scores = {name: w.log_alpha.detach() for name, w in gated.items()}
        masks = topk_masks(scores, self.config.density, self.config.budget)
        for name, weight in gated.items():
            weight.fold_gates()
            weight.set_mask(masks[name])

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        pass

    def resume(self, step: int, total_steps: int) -> None:
        pass

    def finalize(self) -> None:
        self.harden()
