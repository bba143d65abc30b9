"""`load_dataset`: a user file or a builtin name → a validated, split `DatasetSplit`.

The user's data never leaves the machine and nothing is dropped silently: every bad row is
either reported in one `DataError` (file:line: reason for each) or, with
``skip_bad_rows=True``, skipped and returned in ``DatasetSplit.rejected``.
"""

from __future__ import annotations

from pathlib import Path

from .builtin import load_builtin
from .errors import DataError
from .files import Table, read_table
from .records import TASKS, DatasetSplit, Example, PromptExample, RejectedRow, location
from .split import check_fraction, group_split, stratified_split
from .validate import bad_rows_error, labelled_rows, prompt_rows, sort_labels


def load_dataset(
    data: str,
    eval_data: str | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    prompt_column: str = "prompt",
    response_column: str = "response",
    task: str | None = None,
    skip_bad_rows: bool = False,
    seed: int = 0,
    eval_fraction: float = 0.2,
) -> DatasetSplit:
    """Load ``data`` (.csv, .tsv, .jsonl/.ndjson, .parquet, or ``builtin:NAME``).

    ``task`` None infers it: a builtin's own task; for a file, "causal_lm" when it has the
    prompt and response columns but no label column, else "classification". Without
    ``eval_data`` the file is split with a fixed seed (stratified by label for
    classification); with it, ``data`` is all train. Every row is read and checked first.
    """
    check_fraction(eval_fraction)
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if data.startswith("builtin:"):
        if eval_data is not None:
            raise DataError(f"{data} comes with its own eval split; drop --eval-data "
                            f"{eval_data} or train on a file")
        split = load_builtin(data, seed, eval_fraction)
        if task is not None and task != split.task:
            raise DataError(f"{data} is a {split.task} dataset, not {task}")
        return split
    if eval_data is not None and eval_data.startswith("builtin:"):
        raise DataError(f"--eval-data must be a file, not {eval_data}")
    wanted = {text_column, label_column, prompt_column, response_column}
    train_table = read_table(data, wanted)
    eval_table = None
    if eval_data is not None:  # the same file twice (evaluating on it) is read once
        same = Path(eval_data).resolve() == Path(data).resolve()
        eval_table = train_table if same else read_table(eval_data, wanted)
    if task is None:
        columns = set(train_table.columns)
        task = ("causal_lm" if {prompt_column, response_column} <= columns
                and label_column not in columns else "classification")
    name = Path(data).name
    if task == "causal_lm":
        return _causal_lm(name, train_table, eval_table, prompt_column, response_column,
                          skip_bad_rows, seed, eval_fraction)
    return _classification(name, train_table, eval_table, text_column, label_column,
                           skip_bad_rows, seed, eval_fraction)


def _classification(name: str, train_table: Table, eval_table: Table | None, text_column: str,
                    label_column: str, skip_bad_rows: bool, seed: int,
                    eval_fraction: float) -> DatasetSplit:
    rows, rejected = labelled_rows(train_table, text_column, label_column)
    eval_rows: list[tuple[int, str, str]] = []
    if eval_table is not None:
        eval_rows, eval_rejected = labelled_rows(eval_table, text_column, label_column)
        rejected += eval_rejected if eval_table is not train_table else []
    _check_rows(train_table, eval_table, len(rows), len(eval_rows), rejected, skip_bad_rows)
    labels = sort_labels({label for _, _, label in rows})
    index = {label: i for i, label in enumerate(labels)}
    train = [Example(text, index[label]) for _, text, label in rows]
    if eval_table is None:
        train_idx, eval_idx = stratified_split([ex.label for ex in train], seed, eval_fraction)
        train, evaluation = [train[i] for i in train_idx], [train[i] for i in eval_idx]
        _check_split(train_table.path, len(evaluation))
    else:
        _check_eval_labels(train_table.path, eval_table.path, eval_rows, index)
        evaluation = [Example(text, index[label]) for _, text, label in eval_rows]
    return DatasetSplit(name, "classification", train, evaluation, labels, rejected)


def _causal_lm(name: str, train_table: Table, eval_table: Table | None, prompt_column: str,
               response_column: str, skip_bad_rows: bool, seed: int,
               eval_fraction: float) -> DatasetSplit:
    train, rejected = prompt_rows(train_table, prompt_column, response_column)
    evaluation: list[PromptExample] = []
    if eval_table is not None:
        evaluation, eval_rejected = prompt_rows(eval_table, prompt_column, response_column)
        rejected += eval_rejected if eval_table is not train_table else []
    _check_rows(train_table, eval_table, len(train), len(evaluation), rejected, skip_bad_rows)
    if eval_table is None:
        train_idx, eval_idx = group_split(range(len(train)), seed, eval_fraction)
        train, evaluation = [train[i] for i in train_idx], [train[i] for i in eval_idx]
        _check_split(train_table.path, len(evaluation))
    return DatasetSplit(name, "causal_lm", train, evaluation, [], rejected)


def _check_rows(train_table: Table, eval_table: Table | None, n_train: int, n_eval: int,
                rejected: list[RejectedRow], skip_bad_rows: bool) -> None:
    """Raise for bad rows (unless skipped), and for a file with no rows or no valid row."""
    for table in (train_table, eval_table):
        if table is not None and not table.records:
            raise DataError(f"{table.path} has a header but no rows" if table.has_header
                            else f"{table.path} has no rows")
    if rejected and not skip_bad_rows:
        raise bad_rows_error(rejected)
    for table, n in ((train_table, n_train), (eval_table, n_eval)):
        if table is not None and n == 0:
            raise DataError(f"{table.path}: none of its {len(table.records)} rows is valid "
                            "(every one was skipped as a bad row)")


def _check_split(path: str, n_eval: int) -> None:
    if n_eval == 0:
        raise DataError(f"{path} has too few rows per label to hold out an eval set; add rows, "
                        "raise the eval fraction, or give an eval file with --eval-data")


def _check_eval_labels(train_path: str, eval_path: str, eval_rows: list[tuple[int, str, str]],
                       index: dict[str, int]) -> None:
    first_line: dict[str, int] = {}
    for line, _, label in eval_rows:
        if label not in index:
            first_line.setdefault(label, line)
    if first_line:
        listed = ", ".join(f"{label!r} (first at {location(eval_path, line)})"
                           for label, line in sorted(first_line.items()))
        raise DataError(f"{eval_path}: label(s) {listed} appear only in the eval data, not in "
                        f"{train_path}; a model cannot learn a label it never sees in training: "
                        "add training examples of it or remove those eval rows")
