"""`spadapt registry push|list|show|pull|rm`: the adapter registry from the command line.

A typer sub-app (`registry_app`), added to the main command as `registry` by `register`;
every command calls `spadapt.registry.Registry`. `--registry PATH` picks the registry folder
(default: $SPADAPT_REGISTRY, else ~/.local/share/spadapt/registry). Exit codes as in
`spadapt.cli.exits`: 2 for bad input (a bad name or reference, an unknown adapter, a corrupt
adapter), 1 for a bug.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..report.fmt import size
from .exits import exit_codes
from .tables import print_table

registry_app = typer.Typer(
    help="Store, list and fetch adapters by name and version (NAME@3).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_REGISTRY_HELP = ("Registry folder (default: $SPADAPT_REGISTRY, else "
                  "~/.local/share/spadapt/registry).")
_REF_HELP = "NAME (its latest version) or NAME@VERSION."


def _open(registry: Path | None):
    from ..registry import Registry

    return Registry(registry)


def _metric_text(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v:,}"
                     for k, v in metrics.items()) or "-"


@registry_app.command()
def push(
    directory: Path = typer.Argument(..., help="An adapter directory (save_adapter output)."),
    name: str = typer.Option(..., help="Adapter name: letters, digits, '_', '.', '-'."),
    tag: list[str] = typer.Option([], help="A tag (repeat for several)."),
    parent: str | None = typer.Option(None, help="The adapter this one was derived from "
                                      "(NAME@VERSION)."),
    data: Path | None = typer.Option(None, help="The training data file (its sha256 is "
                                     "recorded)."),
    metrics: Path | None = typer.Option(None, help="A JSON file of metrics: a PoC "
                                        "results.json or a flat object of numbers (default: "
                                        "the PoC run's results.json when DIR is RUN/METHOD/"
                                        "adapter)."),
    no_metrics: bool = typer.Option(False, help="Record no metrics."),
    task: str | None = typer.Option(None, help="Task (default: classification when the "
                                    "adapter has labels, else adapter)."),
    if_changed: bool = typer.Option(False, help="Push nothing when the latest version has "
                                    "the same content."),
    new_base: bool = typer.Option(False, help="Allow a base model other than the latest "
                                  "version's."),
    registry: Path | None = typer.Option(None, help=_REGISTRY_HELP),
) -> None:
    """Store an adapter directory as the next version of NAME (verified first)."""
    with exit_codes():
        if no_metrics and metrics is not None:
            from ..registry import RegistryError

            raise RegistryError("give --metrics FILE or --no-metrics, not both")
        entry = _open(registry).push(
            directory, name, tags=tag, parent=parent, data_file=data,
            metrics={} if no_metrics else metrics, task=task, if_changed=if_changed,
            new_base=new_base)
    if entry.unchanged:
        typer.echo(f"unchanged: {entry.ref} has the same content (sha256 {entry.sha256[:12]}); "
                   "nothing pushed")
        return
    typer.echo(f"pushed {entry.ref} (sha256 {entry.sha256[:12]}, "
               f"{size(entry.size_bytes, digits=4)}, metrics: {_metric_text(entry.metrics)})")


@registry_app.command("list")
def list_(
    name: str | None = typer.Argument(None, help="Only the versions of this adapter."),
    as_json: bool = typer.Option(False, "--json", help="JSON (one array of entries)."),
    registry: Path | None = typer.Option(None, help=_REGISTRY_HELP),
) -> None:
    """List the registered adapters: NAME@VERSION, task, accuracy, size, created, tags."""
    with exit_codes():
        entries = _open(registry).list(name)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    if not entries:
        typer.echo("the registry is empty")
        return
    rows = []
    for e in entries:
        accuracy = e.metrics.get("accuracy")
        rows.append((e.ref, e.task, "-" if accuracy is None else f"{accuracy:.3f}",
                     size(e.size_bytes, digits=4), e.created_at[:19].replace("T", " "),
                     ",".join(e.tags) or "-"))
    print_table(("ADAPTER", "TASK", "ACCURACY", "SIZE", "CREATED (UTC)", "TAGS"), rows,
                right=(2, 3))


@registry_app.command()
def show(
    ref: str = typer.Argument(..., help=_REF_HELP),
    as_json: bool = typer.Option(False, "--json", help="JSON (one entry)."),
    registry: Path | None = typer.Option(None, help=_REGISTRY_HELP),
) -> None:
    """Everything recorded about one adapter version."""
    with exit_codes():
        reg = _open(registry)
        entry = reg.show(ref)
    if as_json:
        typer.echo(json.dumps({**entry.to_dict(), "blob": str(reg.blobs / entry.sha256)},
                              indent=2))
        return
    base = entry.base_fingerprint
    labels = f" (labels: {', '.join(entry.labels)})" if entry.labels else ""
    for label, value in [
        ("adapter", entry.ref), ("task", entry.task + labels),
        ("base model", f"{entry.base_model_type}, {base.get('parameters')} parameters"
         + (f" ({base['name_or_path']})" if base.get("name_or_path") else "")),
        ("metrics", _metric_text(entry.metrics)), ("tags", ", ".join(entry.tags) or "-"),
        ("parent", entry.parent or "-"), ("data sha256", entry.data_sha256 or "-"),
        ("size", f"{size(entry.size_bytes, digits=4)} ({entry.size_bytes} bytes)"),
        ("sha256", entry.sha256), ("created", entry.created_at),
        ("blob", str(reg.blobs / entry.sha256)),
    ]:
        typer.echo(f"{label + ':':<13}{value}")


@registry_app.command()
def pull(
    ref: str = typer.Argument(..., help=_REF_HELP),
    directory: Path = typer.Argument(..., help="Where to write the adapter directory."),
    registry: Path | None = typer.Option(None, help=_REGISTRY_HELP),
) -> None:
    """Copy an adapter version out of the registry into DIRECTORY (verified)."""
    with exit_codes():
        reg = _open(registry)
        entry = reg.show(ref)
        reg.pull(entry.ref, directory)
    typer.echo(f"pulled {entry.ref} into {directory}")


@registry_app.command("rm")
def remove(
    ref: str = typer.Argument(..., help="NAME@VERSION (an exact version)."),
    force: bool = typer.Option(False, help="Remove it even if other versions name it as "
                               "their parent."),
    registry: Path | None = typer.Option(None, help=_REGISTRY_HELP),
) -> None:
    """Remove one adapter version (its stored files go once nothing else uses them)."""
    with exit_codes():
        entry = _open(registry).remove(ref, force=force)
    typer.echo(f"removed {entry.ref}")


def register(app: typer.Typer) -> None:
    """Add `registry ...` to the main command."""
    app.add_typer(registry_app, name="registry")
