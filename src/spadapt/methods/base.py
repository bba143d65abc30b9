"""The shapes every adapter method shares: what a method plans and builds, and how tensors leave
for storage.

A method (one entry of `METHODS`) answers two questions: where it goes in a model (`plan`,
returning `SitePlan`s keyed by stable module names) and what it adds at each place (`build`,
returning an adapter module). Site wrappers hold the adapters of all adapter names at one module
and route rows between them. Adapter modules implement the small `AdapterModule` protocol that
`AdaptedModel`, the mask code and storage rely on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..config import AdapterConfig
from ..masks.masked import MaskedWeight
from ..storage import StoredTensor
from .routing import Routing


@dataclass(frozen=True)
class SitePlan:
    """One place an adapter goes."""

    name: str  # stable module name (no wrapper segments); keys storage and random seeds
    join: str  # bottleneck join mode (see spadapt.arch.JOIN_MODES) or "linear" / "head"


class AdapterModule(Protocol):
    """What an adapter module at one site offers to the rest of spadapt."""

    def score_targets(self, base_layer: nn.Module) -> dict[str, torch.Tensor]:
        """Local name -> tensor θ a scorer ranks (shape of the mask to choose)."""

    def apply_masks(self, masks: dict[str, torch.Tensor], base_layer: nn.Module) -> None:
        """Keep exactly the True entries of each masked tensor."""

    def finish_init(self) -> None:
        """Called after masks are chosen: set the init that makes the model equal the base."""

    def masked_weights(self) -> dict[str, MaskedWeight]:
        """Local name -> MaskedWeight that schedules may prune (empty if none)."""

    def synflow_chain(self) -> list[str]:
        """Local names of the weights along the adapter's linear chain, input side first."""

    def export(self) -> dict[str, StoredTensor]:
        """Local name -> what storage saves."""

    def import_(self, tensors: dict[str, StoredTensor], base_layer: nn.Module) -> None:
        """Load what `export` gave (already validated for shapes and counts)."""


@dataclass(frozen=True)
class Method:
    """An adapter method: where it goes, what it adds, and the wrapper that hosts it."""

    name: str
    plan: Callable[[dict[str, list[tuple[str, nn.Module]]], nn.Module, AdapterConfig],
                   list[SitePlan]]
    build: Callable[[SitePlan, nn.Module, AdapterConfig, int], nn.Module]
    wrapper: type[nn.Module]  # constructed as wrapper(base_layer, routing, plan, config)


def module_dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    for tensor in module.parameters():
        return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")


def batch_size_of(args: tuple, kwargs: dict) -> tuple[int, torch.device]:
    for value in (*args, *kwargs.values()):
        if torch.is_tensor(value):
            return value.shape[0], value.device
    raise ValueError("an adapted module was called without a tensor argument")


def apply_by_group(
    out: torch.Tensor,
    x: torch.Tensor,
    groups: list[tuple[str, torch.Tensor | None]],
    modules: nn.ModuleDict,
    fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """`out` with the rows of each group replaced by fn(module of the group, its rows of x)."""
    for name, rows in groups:
        if rows is None:
            return fn(modules[name], x)
        out = out.index_copy(0, rows, fn(modules[name], x.index_select(0, rows)))
    return out


class SiteWrapper(nn.Module):
    """Holds the adapters of every adapter name at one module; subclasses define `forward`."""

    def __init__(self, base_layer: nn.Module, routing: Routing, plan: SitePlan,
                 config: AdapterConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self.site_name = plan.name
        self.join = plan.join
        self._routing = [routing]  # in a list so nn.Module does not register or copy it oddly

    @property
    def routing(self) -> Routing:
        return self._routing[0]

    def groups(self, args: tuple, kwargs: dict) -> list[tuple[str, torch.Tensor | None]]:
        batch, device = batch_size_of(args, kwargs)
        return self.routing.groups(batch, self.adapters, device)
