"""Checks every row of a `Table` and turns the good ones into examples.

A bad row (unparseable, empty or non-string text, missing or empty label) becomes a
`RejectedRow` with its file and line; the caller either raises them all as one `DataError`
(`bad_rows_error`) or skips them and reports them. Nothing is dropped silently.
"""

from __future__ import annotations

import re

from .errors import DataError
from .files import Table, json_type
from .records import PromptExample, RejectedRow

# The command-line flag that names each column, for "name the right one with ..." hints.
COLUMN_FLAGS = {"text": "--text-column", "label": "--label-column",
                "prompt": "--prompt-column", "response": "--response-column"}
MAX_LISTED = 50  # bad rows listed in one error message


def require_columns(table: Table, columns: dict[str, str]) -> None:
    """``columns``: role ("text", "label", ...) → column name. Raise naming the file, the
    missing column, the columns found and the flag to use."""
    for role, column in columns.items():
        if column not in table.columns:
            found = ", ".join(repr(name) for name in table.columns) or "none"
            raise DataError(f"{table.path} has no {role} column {column!r} (columns found: "
                            f"{found}); name the {role} column with {COLUMN_FLAGS[role]} NAME")


def labelled_rows(
    table: Table, text_column: str, label_column: str
) -> tuple[list[tuple[int, str, str]], list[RejectedRow]]:
    """``(rows, rejected)``: rows are ``(line, text, label name)``; labels are strings
    (numbers become their ``str``), stripped of surrounding whitespace."""
    require_columns(table, {"text": text_column, "label": label_column})
    rows: list[tuple[int, str, str]] = []
    rejected: list[RejectedRow] = []
    for record in table.records:
        text, label = record.values.get(text_column), record.values.get(label_column)
        problem = (record.problem or _text_problem(text, text_column)
                   or _label_problem(label, label_column))
        if problem:
            rejected.append(RejectedRow(table.path, record.line, problem))
        else:
            rows.append((record.line, text, str(label).strip()))
    return rows, rejected


def prompt_rows(
    table: Table, prompt_column: str, response_column: str
) -> tuple[list[PromptExample], list[RejectedRow]]:
    """``(examples, rejected)`` for a causal-LM file: both columns must hold non-empty text."""
    require_columns(table, {"prompt": prompt_column, "response": response_column})
    examples: list[PromptExample] = []
    rejected: list[RejectedRow] = []
    for record in table.records:
        prompt, response = record.values.get(prompt_column), record.values.get(response_column)
        problem = (record.problem or _text_problem(prompt, prompt_column)
                   or _text_problem(response, response_column))
        if problem:
            rejected.append(RejectedRow(table.path, record.line, problem))
        else:
            examples.append(PromptExample(prompt=prompt, response=response))
    return examples, rejected


def _text_problem(value: object, column: str) -> str | None:
    if value is None:
        return f"{column!r} is missing"
    if not isinstance(value, str):
        return f"{column!r} is not a string (got {json_type(value)})"
    if not value:
        return f"{column!r} is empty"
    if not value.strip():
        return f"{column!r} is only whitespace"
    return None


def _label_problem(value: object, column: str) -> str | None:
    if value is None:
        return f"{column!r} is missing"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{column!r} must be a string or a number (got {json_type(value)})"
    if not str(value).strip():
        return f"{column!r} is empty"
    return None


def bad_rows_error(rejected: list[RejectedRow]) -> DataError:
    """One error listing every bad row as ``file:line: reason`` (the first `MAX_LISTED`)."""
    files = sorted({row.file for row in rejected})
    lines = [f"  {row}" for row in rejected[:MAX_LISTED]]
    if len(rejected) > MAX_LISTED:
        lines.append(f"  ... and {len(rejected) - MAX_LISTED} more")
    return DataError(
        f"{len(rejected)} bad row(s) in {', '.join(files)}; fix them, or pass --skip-bad-rows "
        "to skip them (they are then counted and listed in the results):\n" + "\n".join(lines))


def sort_labels(names: set[str]) -> list[str]:
    """Label names in a fixed order: numerically if all are integers, else as strings."""
    if all(re.fullmatch(r"[+-]?\d+", name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)
