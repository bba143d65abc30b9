"""Checks every row of a `Table` and turns the good ones into examples.

A bad row (unparseable, empty or non-string text, missing or empty label) becomes a
`RejectedRow` with its file and line; the caller either raises them all as one `DataError`
(`bad_rows_error`) or skips them and reports them. Nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


def _checked_rows(table: Table, checks: list[tuple[str, str, Callable]],
                  build: Callable) -> tuple[list, list[RejectedRow]]:
    """Records whose columns all pass their check become ``build(record)``; the others are
    rejected with the first problem found. ``checks``: (role, column, check) in order."""
    require_columns(table, {role: column for role, column, _ in checks})
    good: list = []
    rejected: list[RejectedRow] = []
    for record in table.records:
        problem = record.problem or next(
            (found for _, column, check in checks
             if (found := check(record.values.get(column), column))), None)
        if problem:
            rejected.append(RejectedRow(table.path, record.line, problem))
        else:
            good.append(build(record))
    return good, rejected


def labelled_rows(
    table: Table, text_column: str, label_column: str
) -> tuple[list[tuple[int, str, str]], list[RejectedRow]]:
    """``(rows, rejected)``: rows are ``(line, text, label name)``; labels are strings
    (numbers become their ``str``), stripped of surrounding whitespace."""
    return _checked_rows(
        table, [("text", text_column, _text_problem), ("label", label_column, _label_problem)],
        lambda r: (r.line, r.values[text_column], str(r.values[label_column]).strip()))


def prompt_rows(
    table: Table, prompt_column: str, response_column: str
) -> tuple[list[PromptExample], list[RejectedRow]]:
    """``(examples, rejected)`` for a causal-LM file: both columns must hold non-empty text."""
    return _checked_rows(
        table, [("prompt", prompt_column, _text_problem),
                ("response", response_column, _text_problem)],
        lambda r: PromptExample(prompt=r.values[prompt_column],
                                response=r.values[response_column]))


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
