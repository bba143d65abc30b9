"""The `spadapt` command (typer): thin; every command calls the library.

One module per command group, each adding its commands with `register(app)`:
`run` (poc, train), `adapters` (inspect, eval, predict), `reports` (report, recipes),
`registry` (registry push|list|show|pull|rm), `serve` and `tune`. Exit codes live in `exits`;
options that fill a dataclass are built from its fields in `options`. torch and transformers
are imported inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import typer

from . import adapters, registry, reports, run, serve, tune

app = typer.Typer(
    help="Sparse adapters for frozen Hugging Face transformers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback with tensors in it is unreadable
)
for group in (run, adapters, reports, registry, serve, tune):
    group.register(app)

__all__ = ["app"]
