"""The `spadapt` command (typer): thin; every command calls the library.

Commands: poc, train, eval, predict, report, recipes, inspect; each calls the library.
Exit codes: 0 ok; 2 bad input (any SpadaptError: ConfigError,
AdapterError, AdapterFileError, AssetError, ...), printed as `error: <message>` on stderr;
1 anything else. torch and transformers are imported inside the commands, so `--help` stays
fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import typer

app = typer.Typer(
    help="Sparse adapters for frozen Hugging Face transformers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback with tensors in it is unreadable
)


def _is_user_error(error: BaseException) -> bool:
    """spadapt's own errors (SpadaptError) mean bad input; a plain ValueError is a bug."""
    from .errors import SpadaptError

    return isinstance(error, SpadaptError)


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if not _is_user_error(error):
            raise  # typer prints the traceback and exits 1
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"


@app.command("inspect")
def inspect_adapter(
    adapter_dir: Path = typer.Argument(..., help="An adapter directory (save_adapter output)."),
) -> None:
    """Verify an adapter directory and print its config, size and base model."""
    with _exit_codes():
        from .storage import read_adapter_dir

        config, manifest, tensors, name = read_adapter_dir(adapter_dir)
    base = manifest.get("base_model", {})
    typer.echo(f"adapter: {adapter_dir} (name {name!r}, format {manifest['format_version']})")
    typer.echo("config:")
    for key, value in config.to_dict().items():
        typer.echo(f"  {key}: {json.dumps(value)}")
    typer.echo(f"nnz: {manifest.get('nnz')} in {len(tensors)} tensors "
               f"({manifest.get('value_dtype')} values)")
    typer.echo("files:")
    for path in sorted(p for p in adapter_dir.iterdir() if p.is_file()):
        typer.echo(f"  {path.name}: {path.stat().st_size} bytes")
    typer.echo(f"base model: {base.get('model_type')}, {base.get('parameters')} parameters "
               f"(without heads {manifest.get('excluded_heads', [])})")


def _methods_option(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def _print_results(results: dict, out: Path) -> None:
    for method in results["methods"]:
        if "error" in method:
            typer.echo(f"  {method['name']:<13} FAILED: {method['error']}")
            continue
        typer.echo(f"  {method['name']:<13} accuracy {method['accuracy']:.3f}  "
                   f"non-zero {method['nonzero_params']:>10,}  "
                   f"{_kb(method['adapter_bytes']):>11}  {method['train_seconds']:.0f} s")
    typer.echo(f"report: {out / 'report.html'} (and report.md, results.json)")


@app.command()
def poc(
    data: str = typer.Option("builtin:rotten_tomatoes", help="Training data: CSV, TSV, JSONL, "
                             "Parquet file, or builtin:rotten_tomatoes / builtin:reuters_r8."),
    eval_data: str | None = typer.Option(None, help="Evaluation data (default: a stratified "
                                         "fixed-seed split of --data)."),
    text_column: str = typer.Option("text", help="Column with the text."),
    label_column: str = typer.Option("label", help="Column with the label."),
    model: str = typer.Option("builtin:minilm", help="Base model: builtin:minilm or a local "
                              "Hugging Face folder."),
    methods: str = typer.Option(",".join(["full", "lora", "adapter", "sparse", "large_sparse",
                                          "sparse_delta"]),
                                help="Comma-separated recipes (see `spadapt recipes`)."),
    budget: str = typer.Option("quick", help="quick (minutes), standard (the real "
                               "comparison), or smoke (seconds; for tests)."),
    lang: str = typer.Option("en", help="Report language: en or ja."),
    seed: int = typer.Option(0, help="Seed of split, initialisation and data order."),
    skip_bad_rows: bool = typer.Option(False, help="Skip bad rows (listed in the report) "
                                       "instead of stopping."),
    resume: bool = typer.Option(False, help="Keep finished methods; resume the unfinished one."),
    progress: bool = typer.Option(True, help="Progress bars on stderr."),
    out: Path = typer.Option(..., help="Run directory for results.json, report.md/html and "
                             "one folder per method."),
) -> None:
    """Compare methods on your data: accuracy and cost, in a report management can read."""
    with _exit_codes():
        from .poc import PocOptions, run_poc

        results = run_poc(PocOptions(
            out=out, data=data, eval_data=eval_data, text_column=text_column,
            label_column=label_column, model=model, methods=_methods_option(methods),
            budget=budget, lang=lang, seed=seed, skip_bad_rows=skip_bad_rows, resume=resume,
            progress=progress))
    _print_results(results, out)
    if any("error" in m for m in results["methods"]):
        raise typer.Exit(1)


def _train_epilog() -> str:
    from .config import AdapterConfig
    from .helptext import fields_help
    from .train.config import TrainConfig

    return ("Recipe fields (override with --set section.key=value):\n\n"
            + fields_help(TrainConfig, "train") + "\n\n" + fields_help(AdapterConfig, "adapter"))


@app.command(epilog=_train_epilog())
def train(
    config: str = typer.Option(..., help="Recipe: a YAML file or a builtin name "
                               "(see `spadapt recipes`)."),
    set_: list[str] = typer.Option([], "--set", help="Override: section.key=value "
                                   "(e.g. train.learning_rate=0.01)."),
    data: str | None = typer.Option(None, help="Training data (default: the recipe's, else "
                                    "builtin:rotten_tomatoes)."),
    eval_data: str | None = typer.Option(None, help="Evaluation data (default: a split)."),
    model: str | None = typer.Option(None, help="Base model (default: the recipe's, else "
                                     "builtin:minilm)."),
    text_column: str = typer.Option("text", help="Column with the text."),
    label_column: str = typer.Option("label", help="Column with the label."),
    seed: int = typer.Option(0, help="Seed."),
    resume: bool = typer.Option(False, help="Resume from OUT's last checkpoint."),
    out: Path = typer.Option(..., help="Run directory."),
) -> None:
    """Train one recipe on your data and save its adapter (all recipe fields below)."""
    with _exit_codes():
        from .poc import PocOptions, run_poc
        from .recipe import load_recipe

        recipe = load_recipe(config, set_)
        results = run_poc(PocOptions(
            out=out, data=data or recipe.data or "builtin:rotten_tomatoes", eval_data=eval_data,
            text_column=text_column, label_column=label_column,
            model=model or recipe.model or "builtin:minilm", methods=[recipe], budget="recipe",
            seed=seed, resume=resume))
    _print_results(results, out)
    if any("error" in m for m in results["methods"]):
        raise typer.Exit(1)


@app.command("eval")
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
) -> None:
    """A saved adapter's metrics on a file (JSON): accuracy, macro-F1 and confusion matrix for
    a classifier; response loss, perplexity and exact match for a causal-LM adapter."""
    with _exit_codes():
        from .predict import evaluate_file, load_adapted

        adapted, task = load_adapted(adapter, model)
        metrics = evaluate_file(adapted, task, data, text_column, label_column, skip_bad_rows,
                                prompt_column, response_column)
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
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
    with _exit_codes():
        from .predict import classify_remote, load_adapted, predict_texts

        if server is not None:
            rows = classify_remote(server, adapter, list(text), api_key)
        else:
            adapted, task = load_adapted(Path(adapter), model)
            rows = predict_texts(adapted, task, list(text))
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False))


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A PoC run directory with results.json."),
    lang: str = typer.Option("en", help="Report language: en or ja."),
) -> None:
    """(Re)write report.md and report.html from a run's results.json."""
    with _exit_codes():
        from .report import write_report

        paths = write_report(run_dir, lang=lang)
    for path in paths.values():
        typer.echo(str(path))


@app.command()
def recipes() -> None:
    """List the builtin recipes (methods) with their descriptions."""
    from .recipe import builtin_recipes, load_recipe

    for name in builtin_recipes():
        typer.echo(f"{name:<13} {load_recipe(name).description}")


from .cli_registry import registry_app  # noqa: E402  (imports no torch)
from .serve.cli import serve_command  # noqa: E402  (imports no torch or fastapi)

app.add_typer(registry_app, name="registry")
app.command("serve")(serve_command)


if __name__ == "__main__":
    app()
