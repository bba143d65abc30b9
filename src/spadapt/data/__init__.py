"""Datasets for spadapt: user files (CSV, TSV, JSON Lines, Parquet) and builtin datasets.

``load_dataset`` is the entry point (``load.py``); the modules each do one job: ``files``
reads, ``validate`` checks rows, ``split`` splits, ``builtin`` lists the builtin datasets
(one module each: ``rotten_tomatoes``, ``orange_text`` (Reuters R8/R52, 20 Newsgroups),
``chatterbot``, ``country_qa``).
"""

from spadapt.data.builtin import BUILTIN_DATASETS, load_builtin
from spadapt.data.chatterbot import load_chatterbot_qa, read_chatterbot_qa
from spadapt.data.country_qa import load_country_qa, read_country_qa
from spadapt.data.errors import DataError
from spadapt.data.files import FORMATS
from spadapt.data.load import load_dataset
from spadapt.data.orange_text import load_reuters_r8
from spadapt.data.records import DatasetSplit, Example, PromptExample, RejectedRow
from spadapt.data.rotten_tomatoes import (
    ROTTEN_TOMATOES_LABELS,
    load_rotten_tomatoes,
    read_rotten_tomatoes,
)

__all__ = [
    "BUILTIN_DATASETS",
    "FORMATS",
    "ROTTEN_TOMATOES_LABELS",
    "DataError",
    "DatasetSplit",
    "Example",
    "PromptExample",
    "RejectedRow",
    "load_builtin",
    "load_chatterbot_qa",
    "load_country_qa",
    "load_dataset",
    "load_reuters_r8",
    "load_rotten_tomatoes",
    "read_chatterbot_qa",
    "read_country_qa",
    "read_rotten_tomatoes",
]
