"""What a mask scorer sees (`ScoreContext`) and returns (higher score = keep), plus helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch


@dataclass
class ScoreContext:
    """Inputs of a scorer. Tensor names are stable module paths, so scores are reproducible."""

    targets: dict[str, torch.Tensor]  # name -> θ, the tensor to score (requires grad if needed)
    seed: int  # seeds the random scorer
    density: float  # final fraction kept (iterative scorers prune towards it)
    budget: str  # "global" or "layer"
    losses: Callable[[], Iterator[torch.Tensor]] | None = None  # calibration losses, one per
    #                                  batch (per row for a scorer with `per_example`)
    squared_gradients: Callable[[], dict[str, torch.Tensor]] | None = None  # fisher: name ->
    #     Σ over calibration rows of (∂ loss(row) / ∂θ)², when the model computes it batched
    chains: list[list[str]] = field(default_factory=list)  # synflow: weight chains, input first
    iterations: int = 20  # synflow: pruning rounds


class Scorer(Protocol):
    needs_data: bool  # True when the scorer needs calibration batches
    per_example: bool  # True: `losses` yields one loss per calibration row, not per batch

    def __call__(self, ctx: ScoreContext) -> dict[str, torch.Tensor]: ...


def stable_seed(seed: int, name: str) -> int:
    """A 63-bit seed from (seed, name) that is the same on every machine and Python run."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def require_losses(ctx: ScoreContext, scorer: str) -> Callable[[], Iterator[torch.Tensor]]:
    if ctx.losses is None:
        raise ValueError(
            f"scorer {scorer!r} needs calibration data: pass calibration=[batch, ...] (dicts of "
            "model inputs that include labels, so the model returns a loss) to spadapt.attach"
        )
    return ctx.losses


def gradients(loss: torch.Tensor, targets: dict[str, torch.Tensor], create_graph: bool = False):
    tensors = list(targets.values())
    grads = torch.autograd.grad(loss, tensors, create_graph=create_graph, allow_unused=True)
    return {
        name: torch.zeros_like(t) if g is None else g
        for (name, t), g in zip(targets.items(), grads, strict=True)
    }
