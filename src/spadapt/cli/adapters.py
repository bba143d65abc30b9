"""`spadapt inspect`, `eval` and `predict`: a saved adapter, checked, measured or used."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .exits import exit_codes


def inspect_adapter(
    adapter_dir: Path = typer.Argument(..., help="An adapter directory (save_adapter output)."),
    plot: Path | None = typer.Option(None, help="Also draw the kept values by layer and "
                                     "module into this PNG file."),
) -> None:
    """Verify an adapter directory and print its task, config, size, base model and where its
    kept values are (by layer and module)."""
    with exit_codes():
        from ..storage import read_adapter_dir

        stored = read_adapter_dir(adapter_dir)
    manifest, task = stored.manifest, stored.task
    base = manifest.get("base_model", {})
    typer.echo(f"adapter: {adapter_dir} (name {stored.adapter_name!r}, format "
               f"{manifest['format_version']})")
    labels = f" (labels: {', '.join(task.labels)})" if task.labels else ""
    typer.echo(f"task: {task.task}{labels}")
    typer.echo("config:")
    for key, value in stored.config.to_dict().items():
        typer.echo(f"  {key}: {json.dumps(value)}")
    typer.echo(f"nnz: {manifest.get('nnz')} in {len(stored.tensors)} tensors "
               f"({manifest.get('value_dtype')} values)")
    typer.echo("files:")
    for path in sorted(p for p in adapter_dir.iterdir() if p.is_file()):
        typer.echo(f"  {path.name}: {path.stat().st_size} bytes")
    typer.echo(f"base model: {base.get('model_type')}, {base.get('parameters')} parameters "
               f"(without heads {manifest.get('excluded_heads', [])})")
    from ..spread import kept_spread
    from .tables import print_table

    spread = kept_spread({name: t.values.numel() for name, t in stored.tensors.items()})
    typer.echo("kept values by layer and module:")
    print_table(("LAYER", "TOTAL", *[m.upper() for m in spread.modules]),
                [(layer, f"{sum(row):,}", *[f"{v:,}" for v in row])
                 for layer, row in zip(spread.layers, spread.counts, strict=True)],
                right=tuple(range(1, len(spread.modules) + 2)))
    if plot is not None:
        from .. import atomic
        from ..report.plots import spread_png

        atomic.write_file(plot, spread_png(spread, f"{adapter_dir}: kept values by layer"))
        typer.echo(f"plot: {plot}")


def evaluate(
    adapter: Path = typer.Option(..., help="Adapter directory."),
    data: str = typer.Option(..., help="File to evaluate on: labelled (classifier) or "
                             "prompt/response (causal-LM adapter)."),
    text_column: str = typer.Option("text", help="Column with the text (classifier)."),
    label_column: str = typer.Option("label", help="Column with the label (classifier)."),
    prompt_column: str = typer.Option("prompt", help="Column with the prompt (causal LM)."),
    response_column: str = typer.Option("response", help="Column with the reference answer "
                                        "(causal LM)."),
    model: str | None = typer.Option(None, help="Base model (default: the one recorded in "
                                     "the adapter)."),
    skip_bad_rows: bool = typer.Option(False, help="Skip bad rows instead of stopping."),
    precision: str = typer.Option("fp32", help="fp32, or bf16: the forwards under bf16 "
                                  "autocast, as a PoC run whose results.json says "
                                  "\"precision\": \"bf16\" evaluated."),
) -> None:
    """A saved adapter's metrics on a file (JSON): accuracy, macro-F1 and confusion matrix for
    a classifier; response loss, perplexity and exact match for a causal-LM adapter."""
    with exit_codes():
        from ..predict import PredictError, evaluate_file, load_adapted
        from ..train.levers import PRECISIONS

        if precision not in PRECISIONS:
            raise PredictError(f"--precision must be one of {list(PRECISIONS)}, got "
                               f"{precision!r}")
        adapted, task = load_adapted(adapter, model)
        metrics = evaluate_file(adapted, task, data, text_column, label_column, skip_bad_rows,
                                prompt_column, response_column, precision)
    typer.echo(json.dumps(metrics, indent=2))


def predict(
    adapter: str = typer.Option(..., help="Adapter directory, or with --server the adapter's "
                                "name on the server (NAME or NAME@V)."),
    text: list[str] = typer.Option(..., help="Text to classify, or prompt to answer with a "
                                   "causal-LM adapter (repeat for several)."),
    model: str | None = typer.Option(None, help="Base model (default: the one recorded in "
                                     "the adapter)."),
    server: str | None = typer.Option(None, help="URL of a running `spadapt serve` "
                                      "(e.g. http://127.0.0.1:8000) instead of a local model."),
    api_key: str | None = typer.Option(None, envvar="SPADAPT_API_KEY",
                                       help="Bearer token for --server."),
) -> None:
    """Labels with probabilities for texts, or a causal-LM adapter's answers to prompts; one
    JSON object per line."""
    with exit_codes():
        from ..predict import classify_remote, load_adapted, predict_texts

        if server is not None:
            rows = classify_remote(server, adapter, list(text), api_key)
        else:
            adapted, task = load_adapted(Path(adapter), model)
            rows = predict_texts(adapted, task, list(text))
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add `inspect`, `eval` and `predict` to the main command."""
    app.command("inspect")(inspect_adapter)
    app.command("eval")(evaluate)
    app.command()(predict)
