"""Which weights an adapter keeps: scorers, exact budgets, schedules and masked weights.

- `scorers/`: SCORERS registry (random, magnitude, snip, grasp, fisher, synflow), higher = keep.
- `budget.py`: exact top-k, global or per tensor.
- `schedules/`: SCHEDULES registry (init, gradual, learned, movement, regrow, lottery).
- `masked.py`: `MaskedWeight`, a weight with keep-mask, optional L0 gates, movement scores.
- `optim.py`: an optimizer hook that keeps pruned weights and their state at zero and lets
  the active schedule act on each step (regrowth, the lottery's choice).
"""

from .budget import budget_total, kept_count, topk_masks
from .masked import MaskedWeight
from .optim import keep_pruned_at_zero
from .schedules import SCHEDULES
from .scorers import SCORERS, ScoreContext

__all__ = [
    "SCHEDULES",
    "SCORERS",
    "MaskedWeight",
    "ScoreContext",
    "budget_total",
    "keep_pruned_at_zero",
    "kept_count",
    "topk_masks",
]
