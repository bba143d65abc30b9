"""`spadapt tune`: an Optuna search for the sparse adapter that fits the user's data.

`options` holds what the command line sets (no torch), `space` the search space and its
non-zero budget, `study` the search itself and what it writes (`study.db`, `trials.csv`,
`best.yaml`, `search.png`).
"""

from .options import TuneOptions

__all__ = ["TuneOptions"]
