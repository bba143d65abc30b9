"""Which adapter each row of a batch goes through: the routing state shared by all wrapped sites.

`AdaptedModel` owns one `Routing` object and hands it to every site wrapper. Before a forward it
says which adapter is active, whether adapters are disabled, or which adapter each row uses
(`adapter_names`, with `BASE_NAME` for "no adapter"). A wrapper asks `groups(batch, names)` for
the adapters it holds and gets (adapter, row indices) pairs, with `None` meaning "all rows".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

ROUTINGS_KEPT = 16  # row routings whose row tensors are kept


@dataclass
class Routing:
    active: str | None = None  # adapter used for every row when row_adapters is None
    row_adapters: list[str] | None = None  # per-row adapter names for the current forward
    disabled: bool = False  # True inside `disable_adapter()`: every site is the base module
    # (names, batch size, device) -> {name: rows}: the same routing gives the same row tensors
    # in every forward (a per-site cache such as sparse_delta's stacked deltas can key on them)
    _cache: dict = field(default_factory=dict, repr=False)

    _names: tuple[str, ...] = field(default=(), repr=False)  # row_adapters, as a cache key

    def set_rows(self, names: list[str] | None) -> None:
        self.row_adapters = list(names) if names is not None else None
        self._names = tuple(names) if names is not None else ()

    def _rows_by_name(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        names = self.row_adapters
        assert names is not None
        key = (self._names, batch, device)
        if key not in self._cache:
            if len(self._cache) >= ROUTINGS_KEPT:
                self._cache.clear()
            if batch % len(names) != 0:
                raise ValueError(
                    f"adapter_names has {len(names)} entries but a module saw a batch of {batch} "
                    "rows; give one name per input row"
                )
            repeat = batch // len(names)  # generate() with beams/samples repeats each row
            by_name: dict[str, list[int]] = {}
            for row in range(batch):
                by_name.setdefault(names[row // repeat], []).append(row)
            self._cache[key] = {
                name: torch.tensor(rows, dtype=torch.long, device=device)
                for name, rows in by_name.items()
            }
        return self._cache[key]

    def groups(
        self, batch: int, available, device: torch.device
    ) -> list[tuple[str, torch.Tensor | None]]:
        """(adapter name, rows or None for all rows) for the adapters in `available`."""
        if self.disabled:
            return []
        if self.row_adapters is None:
            return [(self.active, None)] if self.active in available else []
        by_name = self._rows_by_name(batch, device)
        if len(by_name) == 1:
            (name,) = by_name
            return [(name, None)] if name in available else []
        return [(name, rows) for name, rows in by_name.items() if name in available]
