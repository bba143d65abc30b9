"""Exit codes of every `spadapt` command, and the one place errors become them.

0 ok; 2 bad input or usage (any SpadaptError: ConfigError, AdapterError, AdapterFileError,
DataError, RegistryError, ...), printed as `error: <message>` on stderr; 1 an internal error
(typer prints the traceback) or, for `poc`/`train`, a method that failed while the others
were still reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

OK = 0
FAILED = 1  # an internal error, or a PoC method that failed
BAD_INPUT = 2  # bad input or usage; the message names the file, row or field


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Turn spadapt's own errors (bad input) into `error: ...` and exit code 2; anything else
    is a bug and propagates (exit code 1)."""
    from ..errors import SpadaptError

    try:
        yield
    except SpadaptError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(BAD_INPUT) from None
