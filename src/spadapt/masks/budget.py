"""Exact top-k budgets: turn scores into keep-masks with exactly round(density × size) entries.

`budget="global"` ranks all tensors of one adapter together (k = round(density × total size));
`budget="layer"` ranks each tensor alone (k_t = round(density × size_t)). Python's `round`
(half to even) defines the count, and `torch.topk` breaks ties, so the count is always exact.
"""

from __future__ import annotations

import torch


def kept_count(density: float, size: int) -> int:
    """The number of entries kept out of `size` at `density` (fraction kept)."""
    return int(round(density * size))


def _topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = scores.detach().flatten().float()
    if torch.isnan(flat).any():
        raise ValueError("mask scores contain NaN; check the calibration data and loss")
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view(scores.shape)


def topk_masks(scores: dict[str, torch.Tensor], density: float,
               budget: str) -> dict[str, torch.Tensor]:
    """Boolean keep-masks with exactly the budgeted number of True entries."""
    if budget == "layer":
        return {name: _topk_mask(s, kept_count(density, s.numel())) for name, s in scores.items()}
    if budget != "global":
        raise ValueError(f"budget must be 'global' or 'layer', got {budget!r}")
    names = list(scores)
    flat = torch.cat([scores[name].detach().flatten().float().cpu() for name in names])
    mask = _topk_mask(flat, kept_count(density, flat.numel()))
    out, start = {}, 0
    for name in names:
        size = scores[name].numel()
        out[name] = mask[start : start + size].view(scores[name].shape).to(scores[name].device)
        start += size
    return out


def budget_total(sizes: dict[str, int], density: float, budget: str) -> int:
    """Total kept entries the budget allows for tensors of these sizes."""
    if budget == "layer":
        return sum(kept_count(density, n) for n in sizes.values())
    return kept_count(density, sum(sizes.values()))
