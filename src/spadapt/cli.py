"""The `spadapt` command (typer): thin; every command calls the library.

Commands: `demo` (spadapt.demo.run_demo) and `inspect` (spadapt.storage.read_adapter_dir).
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


# The defaults mirror run_demo's (tests/test_cli.py checks they agree), so that --help can
# show them without importing spadapt.demo and torch.
@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for summary.json and adapter/."),
    train_rows: int = typer.Option(1024, min=1, help="Training rows (stratified subset)."),
    eval_rows: int = typer.Option(1000, min=1, help="Evaluation rows (stratified subset)."),
    steps: int = typer.Option(60, min=1, help="AdamW steps."),
    batch_size: int = typer.Option(32, min=1, help="Rows per training step."),
    max_length: int = typer.Option(64, min=1, help="Tokens per row (longer rows truncated)."),
    density: float = typer.Option(0.2, help="Fraction of adapter weights kept, in (0, 1]."),
    learning_rate: float = typer.Option(1e-2, help="Peak AdamW learning rate."),
    seed: int = typer.Option(0, help="Seed of the data subsets, masks, head and dropout."),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
) -> None:
    """Train a sparse adapter on MiniLM + Rotten Tomatoes, save, reload, and report."""
    with _exit_codes():
        from .demo import SUMMARY_FILE, run_demo

        summary = run_demo(out, train_rows=train_rows, eval_rows=eval_rows, steps=steps,
                           batch_size=batch_size, max_length=max_length, density=density,
                           seed=seed, progress=progress, learning_rate=learning_rate)
    report = summary["parameter_report"]
    adapter_bytes = sum(summary["adapter_files"].values())
    typer.echo(f"accuracy: {summary['accuracy_before']:.3f} -> {summary['accuracy_after']:.3f} "
               f"on {summary['dataset']['eval_rows']} eval rows "
               f"(majority class: {summary['accuracy_majority']:.3f})")
    typer.echo(f"adapter: {_kb(adapter_bytes)} on disk in {summary['adapter_dir']}")
    typer.echo(f"non-zero parameters: {report['nonzero']:,} of {report['base']:,} base "
               f"({100 * report['nonzero'] / report['base']:.2f}%)")
    typer.echo(f"train: {summary['train_seconds']:.1f} s, "
               f"{summary['step_seconds_median']:.3f} s per step (median)")
    typer.echo(f"report: {Path(out) / SUMMARY_FILE}")


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


if __name__ == "__main__":
    app()
