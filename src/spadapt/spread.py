"""Where an adapter's kept values sit: counts by layer and by module, from stored tensor names.

Stored names are `site::local` (`bert.encoder.layer.3.output::down`). The layer is the index
after the first `layer`/`layers`/`h`/`block`/`blocks` segment of the site; the module is the
rest of the site after that index (`output`, `attention.self.query`). A tensor outside the
layers (a classifier head) is its own row, `head`. Knows names and counts only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)(?:\.|$)")
HEAD_ROW = "head"  # the row of tensors outside the numbered layers


@dataclass
class Spread:
    layers: list[str]  # row labels: "0", "1", ..., then "head" if any
    modules: list[str]  # column labels, in first-seen order
    counts: list[list[int]]  # counts[row][column]: kept values

    def to_dict(self) -> dict:
        return {"layers": self.layers, "modules": self.modules, "counts": self.counts}

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))


def layer_and_module(name: str) -> tuple[str, str]:
    """("3", "output") for "bert.encoder.layer.3.output::down"; ("head", "classifier") for a
    tensor outside the layers."""
    site = name.split("::", 1)[0]
    match = _LAYER.search(site)
    if match is None:
        return HEAD_ROW, site.rsplit(".", 1)[-1] or site
    return match.group(1), site[match.end():] or site[: match.start()].rsplit(".", 1)[-1]


def kept_spread(values: dict[str, int]) -> Spread:
    """The spread of {stored tensor name: kept values}."""
    cells: dict[tuple[str, str], int] = {}
    modules: list[str] = []
    for name, count in values.items():
        layer, module = layer_and_module(name)
        if module not in modules:
            modules.append(module)
        cells[layer, module] = cells.get((layer, module), 0) + int(count)
    numbered = sorted({layer for layer, _ in cells if layer != HEAD_ROW}, key=int)
    layers = numbered + ([HEAD_ROW] if any(layer == HEAD_ROW for layer, _ in cells) else [])
    return Spread(layers=layers, modules=modules,
                  counts=[[cells.get((layer, module), 0) for module in modules]
                          for layer in layers])
