"""Bottleneck adapters: h ↦ s · up(act(down(h))), joined after or beside a sublayer.

Placements (the module regexes live in `spadapt.arch`):
- "pfeiffer" (Pfeiffer et al., AdapterFusion, EACL 2021): one adapter after the feed-forward block.
- "houlsby" (Houlsby et al., ICML 2019): after the attention output and after the feed-forward.
- "parallel" (He et al., "Towards a Unified View of Parameter-Efficient Transfer Learning",
  ICLR 2022): beside the feed-forward block, output scaled by `parallel_scaling`.

down (r × d) and up (d × r) are `MaskedWeight`s, so they can be pruned (SparseAdapter, He et al.,
Findings of EMNLP 2022); biases stay dense. `large_sparse` builds r/density columns at the same
non-zero budget. The up-projection is zero after init, so the adapted model starts equal to the
base; scorers see a random "probe" up-projection first, so SNIP/GraSP/SynFlow get gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import find_modules
from ..config import AdapterConfig
from ..masks.masked import MaskedWeight
from ..masks.scorers import stable_seed
from .base import (
    Method,
    SitePlan,
    SiteWrapper,
    StoredTensor,
    apply_by_group,
    module_dtype_device,
)

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}


def _normal(shape: tuple[int, ...], std: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * std


class BottleneckAdapter(nn.Module):
    """down → act → up, each projection a MaskedWeight (shapes: down r×d, up d×r)."""

    def __init__(self, hidden: int, config: AdapterConfig, site_name: str, scale: float,
                 dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        width = config.effective_bottleneck
        seed = stable_seed(config.seed, site_name)
        self.down = MaskedWeight(_normal((width, hidden), config.init_std, seed).to(device, dtype))
        self.down_bias = nn.Parameter(torch.zeros(width, device=device, dtype=dtype))
        probe = _normal((hidden, width), config.init_std, seed + 1).to(device, dtype)
        self.up = MaskedWeight(probe)  # scoring probe; zeroed by finish_init
        self.up_bias = nn.Parameter(torch.zeros(hidden, device=device, dtype=dtype))
        self.activation = ACTIVATIONS[config.activation]
        self.scale = scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (..., d) -> (..., d), the adapter's contribution (without the residual)."""
        inner = self.activation(F.linear(h, self.down(), self.down_bias))
        out = F.linear(inner, self.up(), self.up_bias)
        return out if self.scale == 1.0 else out * self.scale

    def score_targets(self, base_layer: nn.Module) -> dict[str, torch.Tensor]:
        return {"down": self.down.weight, "up": self.up.weight}

    def apply_masks(self, masks: dict[str, torch.Tensor], base_layer: nn.Module) -> None:
        self.down.set_mask(masks["down"])
        self.up.set_mask(masks["up"])

    @torch.no_grad()
    def finish_init(self) -> None:
        self.up.weight.zero_()

    def masked_weights(self) -> dict[str, MaskedWeight]:
        return {"down": self.down, "up": self.up}

    def synflow_chain(self) -> list[str]:
        return ["down", "up"]

    def export(self) -> dict[str, StoredTensor]:
        out = {}
        for local, masked in (("down", self.down), ("up", self.up)):
            weight = masked.weight.detach()
            if masked.mask is None:
                out[local] = StoredTensor(tuple(weight.shape), weight.flatten(), None)
            else:
                positions = masked.mask.flatten().nonzero().flatten()
                values = weight.flatten()[positions]
                out[local] = StoredTensor(tuple(weight.shape), values, positions)
        for local, bias in (("down_bias", self.down_bias), ("up_bias", self.up_bias)):
            out[local] = StoredTensor(tuple(bias.shape), bias.detach().flatten(), None)
        return out

    @torch.no_grad()
    def import_(self, tensors: dict[str, StoredTensor], base_layer: nn.Module) -> None:
        for local, masked in (("down", self.down), ("up", self.up)):
            stored = tensors[local]
            weight = masked.weight
            flat = torch.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
            if stored.positions is None:
                flat.copy_(stored.values)
                masked.mask = None
                weight.copy_(flat.view(weight.shape))
            else:
                positions = stored.positions.to(weight.device)
                flat[positions] = stored.values.to(weight.device, weight.dtype)
                weight.copy_(flat.view(weight.shape))
                keep = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
                keep[positions] = True
                masked.set_mask(keep.view(weight.shape))
        self.down_bias.copy_(tensors["down_bias"].values.view(self.down_bias.shape))
        self.up_bias.copy_(tensors["up_bias"].values.view(self.up_bias.shape))


class BottleneckSite(SiteWrapper):
    """Wraps one module and adds the routed adapters' contributions (see arch.JOIN_MODES)."""

    def _contribution(self, x: torch.Tensor, groups) -> torch.Tensor:
        if len(groups) == 1 and groups[0][1] is None:
            return self.adapters[groups[0][0]](x)
        return apply_by_group(torch.zeros_like(x), x, groups, self.adapters, lambda m, v: m(v))

    def forward(self, *args, **kwargs):
        groups = self.groups(args, kwargs)
        if not groups:
            return self.base_layer(*args, **kwargs)
        if self.join == "after":
            y = self.base_layer(*args, **kwargs)
            return y + self._contribution(y, groups)
        if self.join == "beside":
            x = args[0] if args else next(iter(kwargs.values()))
            return self.base_layer(*args, **kwargs) + self._contribution(x, groups)
        # "beside_residual": f(h, r) -> f(h, r + s A(r)); r is the second argument.
        if len(args) >= 2:
            residual = args[1]
            return self.base_layer(args[0], residual + self._contribution(residual, groups),
                                   *args[2:], **kwargs)
        key = "input_tensor" if "input_tensor" in kwargs else list(kwargs)[1]
        residual = kwargs[key]
        kwargs = {**kwargs, key: residual + self._contribution(residual, groups)}
        return self.base_layer(*args, **kwargs)


def plan_bottleneck(table: dict[str, list[tuple[str, nn.Module]]], model: nn.Module,
                    config: AdapterConfig) -> list[SitePlan]:
    from ..arch import architecture_of, unknown_architecture_error

    if config.target_modules is not None:
        sites = [SitePlan(name, "after") for pattern in config.target_modules
                 for name in _match(table, pattern)]
    else:
        spec = architecture_of(model)
        if spec is None:
            raise unknown_architecture_error(model)
        sites = [SitePlan(name, site.join) for site in spec.placements[config.placement]
                 for name in _match(table, site.pattern)]
    return sorted(set(sites), key=lambda s: _natural_key(s.name))


def _match(table: dict[str, list[tuple[str, nn.Module]]], pattern: str) -> list[str]:
    import re

    regex = re.compile(pattern)
    return [name for name in table if regex.search(name)]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in name.split(".")]


def build_bottleneck(plan: SitePlan, base_layer: nn.Module, config: AdapterConfig,
                     hidden: int) -> BottleneckAdapter:
    dtype, device = module_dtype_device(base_layer)
    scale = config.parallel_scaling if plan.join != "after" else 1.0
    return BottleneckAdapter(hidden, config, plan.name, scale, dtype, device)


BOTTLENECK = Method("bottleneck", plan_bottleneck, build_bottleneck, BottleneckSite)

__all__ = ["BOTTLENECK", "BottleneckAdapter", "BottleneckSite", "find_modules"]
