"""What a mask schedule is: when an adapter's masks change during training."""

from __future__ import annotations

from typing import Protocol

import torch

from ...config import AdapterConfig
from ...errors import SpadaptError
from ..masked import MaskedWeight


class ScheduleError(SpadaptError):
    """A mask schedule cannot run as asked."""


def require_one_process(schedule: str, reason: str) -> None:
    """Refuse to run `schedule` under several processes (torch.distributed), naming why."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and \
            torch.distributed.get_world_size() > 1:
        raise ScheduleError(f"schedule {schedule!r} runs in one process only: {reason}; use "
                            "schedule 'init' to train on several processes")


class Schedule(Protocol):
    """Per-adapter mask schedule. `weights` maps stable tensor names to `MaskedWeight`s,
    `deltas` to the adapter's sparse deltas (whose positions a schedule may move)."""

    final_from_prune_end: bool  # False: final from the start ("init"); True: from prune_end

    def __init__(self, config: AdapterConfig, weights: dict[str, MaskedWeight],
                 deltas: dict | None = None) -> None: ...

    def start(self) -> None:
        """Called once at attach, after any init-time masks were applied."""

    def step(self, step: int, total_steps: int) -> None:
        """Called after optimizer step number `step` (1-based) of `total_steps`."""

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        """Called right after each optimizer step, before `step`, with the optimizer's
        per-parameter state (parameter -> dict), which the schedule may change."""

    def regularization(self) -> torch.Tensor | None:
        """A term to add to the training loss, or None."""

    def resume(self, step: int, total_steps: int) -> None:
        """Called when training starts or resumes after optimizer step `step` (0: fresh)."""

    def finalize(self) -> None:
        """Make the masks final at exactly the configured density; drop training-only state."""


def cubic_density(step: int, total_steps: int, config: AdapterConfig) -> float | None:
    """Density at `step` under the cubic schedule of Zhu & Gupta (2017), or None before start.

    d_t = d_f + (1 - d_f) (1 - (t - t0) / (t1 - t0))^3 between t0 = prune_start × T and
    t1 = prune_end × T, updated every `prune_every` steps; d_f afterwards.
    """
    start = round(config.prune_start * total_steps)
    end = max(start + 1, round(config.prune_end * total_steps))
    if step < start:
        return None
    if step >= end:
        return config.density
    if (step - start) % config.prune_every != 0:
        return None
    progress = (step - start) / (end - start)
    return config.density + (1.0 - config.density) * (1.0 - progress) ** 3
