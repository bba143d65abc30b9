"""The records the data layer hands to training: examples, rejected rows, a loaded split."""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("classification", "causal_lm")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text: ``label`` indexes the dataset's list of label names."""

    text: str
    label: int


@dataclass(frozen=True)
class PromptExample:
    """One prompt and the response a causal language model should learn to give."""

    prompt: str
    response: str


@dataclass(frozen=True)  # no slots: callers write vars(row) into results.json
class RejectedRow:
    r"""A row that could not be used: ``line`` is 1-based (CSV/TSV: the physical line where
    the record starts, the header being line 1; JSONL: the line; Parquet: row index + 1).
    Lines are counted as an editor counts them: a lone ``\r`` inside a line ends none."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{location(self.file, self.line)}: {self.reason}"


def location(file: str, line: int) -> str:
    """``file:line``, or ``file:row N`` for Parquet, which has rows, not lines."""
    return f"{file}:row {line}" if file.endswith(".parquet") else f"{file}:{line}"


@dataclass
class DatasetSplit:
    """A dataset ready for training: train and eval lists plus what was learnt on the way."""

    name: str  # "builtin:rotten_tomatoes" or the training file's name
    task: str  # "classification" | "causal_lm"
    train: list  # Example (classification) or PromptExample (causal_lm)
    eval: list
    labels: list[str]  # classification: label names, index = Example.label; causal_lm: []
    rejected: list[RejectedRow] = field(default_factory=list)  # rows skipped, with reasons
