"""`spadapt poc` and `spadapt train`: compare methods on the user's data, or train one recipe.

Both call `spadapt.poc.run_poc`; their options are `PocOptions` fields (`dataclass_options`),
so names, defaults and help are declared once, in `spadapt.poc`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..poc_options import DEFAULT_METHODS, GENERATE_METHODS, PocOptions
from .exits import FAILED, exit_codes
from .options import dataclass_options
from .tables import print_table


def _methods_option(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [m.strip() for m in value.split(",") if m.strip()]


def _print_results(results: dict, out: Path) -> None:
    from ..report.fmt import size

    metric = results.get("metric", "accuracy")
    rows = []
    for method in results["methods"]:
        if "error" in method:
            rows.append((method["name"], f"FAILED: {method['error']}", "", "", ""))
            continue
        rows.append((method["name"], f"{method['accuracy']:.3f}",
                     f"{method['nonzero_params']:,}", size(method["adapter_bytes"], digits=4),
                     f"{method['train_seconds']:.0f} s"))
    print_table(("METHOD", metric.upper(), "NON-ZERO", "SIZE", "TRAIN TIME"), rows,
                right=(1, 2, 3, 4))
    typer.echo(f"report: {out / 'report.html'} (and report.md, results.json)")


def _finish(results: dict, out: Path) -> None:
    _print_results(results, out)
    if any("error" in m for m in results["methods"]):
        raise typer.Exit(FAILED)


POC_FIELDS = ["data", "eval_data", "task", "text_column", "label_column", "prompt_column",
              "response_column", "chat_template", "metric", "model", "methods", "budget",
              "precision", "lang", "seed", "skip_bad_rows", "resume", "progress", "tune",
              "tune_trials", "tune_max_nonzero", "out"]


@dataclass_options(PocOptions, POC_FIELDS, overrides={"methods": {
    "type": str | None, "default": None,
    "help": "Comma-separated recipes (see `spadapt recipes`; default: "
            f"{','.join(DEFAULT_METHODS)} to classify, {','.join(GENERATE_METHODS)} to "
            "generate)."}})
def poc(options: dict) -> None:
    """Compare methods on your data: accuracy and cost, in a report management can read."""
    with exit_codes():
        from .. import poc as pipeline

        results = pipeline.run_poc(PocOptions(
            **{**options, "methods": _methods_option(options["methods"])}))
    _finish(results, options["out"])


def _train_epilog() -> str:
    from ..config import AdapterConfig
    from ..helptext import fields_help
    from ..train.config import TrainConfig

    return ("Recipe fields (override with --set section.key=value):\n\n"
            + fields_help(TrainConfig, "train") + "\n\n" + fields_help(AdapterConfig, "adapter"))


TRAIN_FIELDS = ["data", "eval_data", "model", "text_column", "label_column", "seed", "resume",
                "out"]


@dataclass_options(PocOptions, TRAIN_FIELDS, overrides={
    "data": {"type": str | None, "default": None,
             "help": "Training data (default: the recipe's, else builtin:rotten_tomatoes)."},
    "model": {"type": str | None, "default": None,
              "help": "Base model (default: the recipe's, else builtin:minilm)."},
    "resume": {"help": "Resume from OUT's last checkpoint."}})
def train(
    config: str = typer.Option(..., help="Recipe: a YAML file or a builtin name "
                               "(see `spadapt recipes`)."),
    set_: list[str] = typer.Option([], "--set", help="Override: section.key=value "
                                   "(e.g. train.learning_rate=0.01)."),
    options: dict | None = None,
) -> None:
    """Train one recipe on your data and save its adapter (all recipe fields below)."""
    with exit_codes():
        from .. import poc as pipeline
        from ..recipe import load_recipe

        recipe = load_recipe(config, set_)
        results = pipeline.run_poc(PocOptions(**{
            **options, "data": options["data"] or recipe.data or PocOptions.data,
            "model": options["model"] or recipe.model or PocOptions.model,
            "methods": [recipe], "budget": "recipe"}))
    _finish(results, options["out"])


def register(app: typer.Typer) -> None:
    """Add `poc` and `train` to the main command."""
    app.command()(poc)
    app.command(epilog=_train_epilog())(train)
