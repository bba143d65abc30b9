"""`MaskedWeight`: a trainable weight whose pruned entries are exactly zero, with optional gates.

The effective weight is `weight * gate * mask`: `mask` is a boolean buffer (None while dense),
`gate` is a hard-concrete L0 gate (Louizos et al., "Learning Sparse Neural Networks through L0
Regularization", ICLR 2018) present only under the "learned" schedule. Pruned entries of
`weight` are set to zero when a mask is applied and receive zero gradient afterwards; the
optimizer hook in `spadapt.masks.optim` keeps them (and their optimizer state) at zero even
when a mask changes in the middle of training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

HARD_CONCRETE_GAMMA = -0.1  # stretch interval (gamma, zeta) of the hard-concrete distribution
HARD_CONCRETE_ZETA = 1.1
GATE_INIT_LOG_ALPHA = math.log(9.0)  # gates start ~90% open (drop rate 0.1 in Louizos et al.)


def hard_concrete_gate(log_alpha: torch.Tensor, beta: float, sample: bool) -> torch.Tensor:
    """Gate values z in [0, 1] (Louizos et al. 2018, eq. 10-13); sampled in training."""
    if sample:
        u = torch.rand_like(log_alpha).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    else:
        s = torch.sigmoid(log_alpha)
    stretched = s * (HARD_CONCRETE_ZETA - HARD_CONCRETE_GAMMA) + HARD_CONCRETE_GAMMA
    return stretched.clamp(0.0, 1.0)


def expected_l0(log_alpha: torch.Tensor, beta: float) -> torch.Tensor:
    """Expected number of open gates, the differentiable L0 penalty (Louizos et al., eq. 12)."""
    shift = beta * math.log(-HARD_CONCRETE_GAMMA / HARD_CONCRETE_ZETA)
    return torch.sigmoid(log_alpha - shift).sum()


class MaskedWeight(nn.Module):
    """A weight tensor with an optional keep-mask, L0 gates and movement scores."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.register_buffer("mask", None)  # bool, same shape; None = dense (all kept)
        self.log_alpha: nn.Parameter | None = None  # hard-concrete gate logits ("learned")
        self.gate_beta = 2.0 / 3.0  # hard-concrete temperature
        self.register_buffer("movement", None)  # accumulated -grad*weight ("movement")
        self._movement_hook = None
        self.regrow_count = 0  # "regrow": entries to move after the next optimizer step
        self.regrow_gradient: torch.Tensor | None = None  # ∂L/∂(effective weight), this step

    def forward(self) -> torch.Tensor:
        """The effective weight: weight * gate * mask."""
        weight = self.weight
        if self.log_alpha is not None:
            weight = weight * hard_concrete_gate(self.log_alpha, self.gate_beta, self.training)
        if self.mask is not None:
            weight = weight * self.mask
            if self.regrow_count > 0 and weight.requires_grad:
                weight.register_hook(self._collect_regrow_gradient)
        return weight

    def _collect_regrow_gradient(self, grad: torch.Tensor) -> None:
        """The gradient of the effective weight, pruned entries included (summed over the
        step's micro-batches): where regrown entries would help most."""
        grad = grad.detach().float()
        self.regrow_gradient = grad.clone() if self.regrow_gradient is None else \
            self.regrow_gradient.add_(grad)

    def arm_regrow(self, count: int) -> None:
        """Move `count` kept entries after the next optimizer step (0: disarm)."""
        self.regrow_count = count if self.mask is not None else 0
        self.regrow_gradient = None

    @torch.no_grad()
    def apply_regrow(self, optimizer_state: dict | None) -> bool:
        """Drop the `regrow_count` kept entries of smallest |weight| and keep as many of the
        entries not kept where the collected gradient is largest in magnitude; the dropped
        entries and their optimizer state become zero, the regrown ones start at zero with
        zero optimizer state (as pruned entries are). False if there was nothing to do."""
        gradient, count = self.regrow_gradient, self.regrow_count
        self.regrow_gradient, self.regrow_count = None, 0
        if gradient is None or self.mask is None or count == 0:
            return False
        kept = self.mask.flatten()
        count = min(count, int(kept.sum()), int((~kept).sum()))
        if count == 0:
            return False
        kept_slots = kept.nonzero().flatten()
        order = torch.sort(self.weight.detach().flatten()[kept_slots].abs(), stable=True).indices
        scores = gradient.flatten().abs()
        scores[kept] = -math.inf  # a kept entry is never a candidate
        mask = kept.clone()
        mask[kept_slots[order[:count]]] = False
        mask[torch.topk(scores, count).indices] = True
        mask = mask.view_as(self.mask)
        self.weight.mul_(mask)
        for value in (optimizer_state or {}).values():
            if torch.is_tensor(value) and value.shape == self.weight.shape:
                value.mul_(mask)
        self.mask = mask
        return True

    @property
    def kept(self) -> int:
        """Number of kept entries (the stored non-zeros)."""
        return self.weight.numel() if self.mask is None else int(self.mask.sum())

    def kept_mask(self) -> torch.Tensor:
        if self.mask is None:
            return torch.ones_like(self.weight, dtype=torch.bool)
        return self.mask

    @torch.no_grad()
    def set_mask(self, mask: torch.Tensor) -> None:
        """Keep exactly the True entries; the others become (and stay) zero."""
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight {tuple(self.weight.shape)}")
        mask = mask.to(device=self.weight.device, dtype=torch.bool)
        self.weight.mul_(mask)
        self.mask = mask

    def enable_gates(self, beta: float) -> None:
        """Add hard-concrete L0 gates (one per entry) for the "learned" schedule."""
        self.gate_beta = beta
        self.log_alpha = nn.Parameter(torch.full_like(self.weight, GATE_INIT_LOG_ALPHA))

    @torch.no_grad()
    def fold_gates(self) -> None:
        """Replace the gates by their deterministic values folded into the weight; drop gates."""
        if self.log_alpha is None:
            return
        self.weight.mul_(hard_concrete_gate(self.log_alpha, self.gate_beta, sample=False))
        self.log_alpha = None

    def track_movement(self) -> None:
        """Accumulate movement scores S -= grad * weight after each backward (Sanh et al. 2020)."""
        self.movement = torch.zeros_like(self.weight)

        def accumulate(grad: torch.Tensor) -> torch.Tensor:
            if self.movement is not None:
                self.movement.sub_(grad.detach() * self.weight.detach())
            return grad

        self._movement_hook = self.weight.register_hook(accumulate)

    def stop_movement(self) -> None:
        if self._movement_hook is not None:
            self._movement_hook.remove()
            self._movement_hook = None
        self.movement = None
