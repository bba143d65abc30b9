"""The `SCORERS` registry: which weights to keep. A new scorer is one file plus one line here.

Every scorer maps a `ScoreContext` to {tensor name: scores}, higher = keep; `spadapt.masks.budget`
turns scores into exact top-k masks.
"""

from .base import ScoreContext, Scorer, stable_seed
from .fisher import fisher_scores
from .grasp import grasp_scores
from .magnitude import magnitude_scores
from .random import random_scores
from .snip import snip_scores
from .synflow import synflow_scores

SCORERS: dict[str, Scorer] = {
    "random": random_scores,
    "magnitude": magnitude_scores,
    "snip": snip_scores,
    "grasp": grasp_scores,
    "fisher": fisher_scores,
    "synflow": synflow_scores,
}

__all__ = ["SCORERS", "ScoreContext", "Scorer", "stable_seed"]
