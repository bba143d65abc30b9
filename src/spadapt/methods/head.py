"""Task heads (`modules_to_save`): a trainable copy of a head module per adapter.

A sequence-classification model gets a new, randomly initialised head over the user's labels.
It is trained densely and travels inside the adapter directory, so each adapter carries its own
head; rows routed to `__base__` (or to an adapter without a head) use the original module.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .base import SiteWrapper, StoredTensor, apply_by_group


class HeadCopy(nn.Module):
    """A trainable deep copy of a head module."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(head)
        for parameter in self.module.parameters():
            parameter.requires_grad_(True)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def export(self) -> dict[str, StoredTensor]:
        return {
            name: StoredTensor(tuple(p.shape), p.detach().flatten(), None)
            for name, p in self.module.named_parameters()
        }

    @torch.no_grad()
    def import_(self, tensors: dict[str, StoredTensor]) -> None:
        for name, parameter in self.module.named_parameters():
            parameter.copy_(tensors[name].values.view(parameter.shape).to(parameter.dtype))


class HeadSite(SiteWrapper):
    def forward(self, x: torch.Tensor, *args, **kwargs):
        groups = self.groups((x,), {})
        if not groups:
            return self.base_layer(x, *args, **kwargs)
        if len(groups) == 1 and groups[0][1] is None:
            return self.adapters[groups[0][0]](x, *args, **kwargs)
        out = self.base_layer(x, *args, **kwargs)
        return apply_by_group(out, x, groups, self.adapters, lambda m, v: m(v, *args, **kwargs))
