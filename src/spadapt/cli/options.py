"""Typer options declared once: from the fields of the dataclass they fill.

`@dataclass_options(PocOptions, ["data", "seed", ...])` gives a command one `--option` per
named field, with the field's type, default and help (`spadapt.helptext.described`), and
hands their values to the command as one `options` dict. `overrides` changes a field's
default, type or help for one command (e.g. `spadapt train` takes its data from the recipe
unless `--data` is given).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

import typer

from ..helptext import field_default


def dataclass_options(cls: type, names: Sequence[str],
                      overrides: dict[str, dict[str, Any]] | None = None) -> Callable:
    """Decorate a typer command whose last parameter is `options: dict`."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def decorate(command: Callable) -> Callable:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name != "options"]
        generated = []
        for name in names:
            item, extra = fields[name], (overrides or {}).get(name, {})
            default = extra.get("default", field_default(item))
            option = typer.Option(... if default is dataclasses.MISSING else default,
                                  help=extra.get("help", item.metadata.get("help")))
            generated.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                               default=option,
                                               annotation=extra.get("type", hints[name])))
        parameters = [*generated, *own]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            options = {name: kwargs.pop(name) for name in names}
            return command(**kwargs, options=options)

        wrapper.__signature__ = inspect.Signature(parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate
