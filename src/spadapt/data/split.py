"""Fixed-seed train/eval splits: stratified by label, or by group (a group never straddles).

Both return index lists ``(train, eval)``, each shuffled, from ``numpy.random.default_rng``;
the same inputs and seed give the same split and order every time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np


def check_fraction(eval_fraction: float) -> None:
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")


def stratified_split(
    labels: Sequence[int], seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """Each label sends ``round(n * eval_fraction)`` of its ``n`` items to eval, but keeps at
    least one in train: a label seen once stays in train (it cannot be stratified)."""
    check_fraction(eval_fraction)
    rng = np.random.default_rng(seed)
    array = np.asarray(labels)
    train: list[int] = []
    evaluation: list[int] = []
    for label in sorted(set(labels)):
        idx = rng.permutation(np.flatnonzero(array == label))
        n_eval = min(round(len(idx) * eval_fraction), len(idx) - 1)
        evaluation.extend(idx[:n_eval].tolist())
        train.extend(idx[n_eval:].tolist())
    return rng.permutation(train).tolist(), rng.permutation(evaluation).tolist()


def group_split(
    groups: Sequence[Hashable], seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """Whole groups, in a seeded random order, go to eval while they fit in
    ``round(len(groups) * eval_fraction)`` items (at most all but one). With one group per
    item this is a plain random split of exactly that size."""
    check_fraction(eval_fraction)
    rng = np.random.default_rng(seed)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    target = min(round(len(groups) * eval_fraction), len(groups) - 1)
    train: list[int] = []
    evaluation: list[int] = []
    order = list(members)
    for g in rng.permutation(len(order)).tolist():
        idx = members[order[g]]
        (evaluation if len(evaluation) + len(idx) <= target else train).extend(idx)
    return rng.permutation(train).tolist(), rng.permutation(evaluation).tolist()
