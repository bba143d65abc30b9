"""`spadapt tune`: search the sparse-adapter configuration for the user's data (Optuna).

Options are `TuneOptions` fields (`dataclass_options`); the search is `spadapt.tune.study`.
"""

from __future__ import annotations

import typer

from ..tune.options import TuneOptions
from .exits import exit_codes
from .options import dataclass_options

TUNE_FIELDS = ["data", "eval_data", "text_column", "label_column", "prompt_column",
               "response_column", "model", "budget", "precision",
               "trials", "minutes", "max_nonzero", "objective", "validation_rows", "seed",
               "resume", "progress", "out"]


@dataclass_options(TuneOptions, TUNE_FIELDS)
def tune(options: dict) -> None:
    """Search the sparse adapter for your data: trials scored on held-out training rows."""
    with exit_codes():
        from ..tune.study import run_tune

        result = run_tune(TuneOptions(**options))
    out = options["out"]
    best = result["best"]
    if best is None:
        typer.echo(f"no trial completed ({result['trials']} trials); see {out / 'trials.csv'}")
        raise typer.Exit(1)
    typer.echo(f"best: trial {best['number']}, validation {result['score']} {best['value']:.4f}: "
               f"{best['recipe']['description']}")
    typer.echo(f"recipe: {out / 'best.yaml'} (spadapt train --config {out / 'best.yaml'}); "
               f"trials: {out / 'trials.csv'}; plot: {out / 'search.png'}")
    if result["objective"] == "pareto":
        typer.echo(f"Pareto front: trials {', '.join(map(str, result['front']))} "
                   f"({out / 'pareto.csv'})")


def register(app: typer.Typer) -> None:
    """Add `tune` to the main command."""
    app.command()(tune)
