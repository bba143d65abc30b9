"""`spadapt report` and `spadapt recipes`: rewrite a run's report; list the methods."""

from __future__ import annotations

from pathlib import Path

import typer

from .exits import exit_codes


def report(
    run_dir: Path = typer.Argument(..., help="A PoC run directory with results.json."),
    lang: str = typer.Option("en", help="Report language: en or ja."),
) -> None:
    """(Re)write report.md and report.html from a run's results.json."""
    with exit_codes():
        from ..report import write_report

        paths = write_report(run_dir, lang=lang)
    for path in paths.values():
        typer.echo(str(path))


def recipes() -> None:
    """List the builtin recipes (methods) with their descriptions."""
    from ..recipe import builtin_recipes, load_recipe
    from .tables import print_table

    print_table(("RECIPE", "DESCRIPTION"),
                [(name, load_recipe(name).description) for name in builtin_recipes()])


def register(app: typer.Typer) -> None:
    """Add `report` and `recipes` to the main command."""
    app.command()(report)
    app.command()(recipes)
