""""init": masks are chosen once at attach (by the scorer) and never change (SparseAdapter)."""

from __future__ import annotations

from ...config import AdapterConfig
from ..masked import MaskedWeight


class InitSchedule:
    final_from_prune_end = False  # the masks are final from attach on

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None:
        self.config = config
        self.weights = weights

    def start(self) -> None:
        pass

    def step(self, step: int, total_steps: int) -> None:
        pass

    def regularization(self):
        return None

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        pass

    def resume(self, step: int, total_steps: int) -> None:
        pass

    def finalize(self) -> None:
        pass
