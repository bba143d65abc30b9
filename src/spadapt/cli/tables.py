"""Aligned tables on the terminal, laid out by `rich.table`: a header line, then one line per
row, no borders, trailing spaces trimmed (easy to read, grep and paste)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import typer
from rich.console import Console
from rich.table import Table

_WIDTH = 1000  # never wrap: a long row stays one line, as `ls -l` keeps it


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]],
                right: Iterable[int] = ()) -> None:
    """Print `rows` under `header` in aligned columns; columns in `right` are right-aligned."""
    right = set(right)
    table = Table(box=None, pad_edge=False, highlight=False, padding=(0, 2, 0, 0))
    for index, title in enumerate(header):
        table.add_column(title, justify="right" if index in right else "left", no_wrap=True,
                         header_style="none")
    for row in rows:
        table.add_row(*row)
    console = Console(width=_WIDTH, markup=False, emoji=False, color_system=None)
    with console.capture() as captured:
        console.print(table)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))
