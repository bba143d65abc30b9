"""Config fields checked by pydantic against their type hints, with errors that name the field.

`coerce_fields(cls, values, error)` validates each value in lax mode (so "1e-3" from YAML or
`--set` is the float 0.001, "3" the int 3) against the annotated type of the dataclass field,
`Annotated` constraints included (`Field(gt=0)`), and raises `error` as
"<field> must be a number, got 'abc'". Booleans are never numbers here.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .errors import SpadaptError

_PHRASES = {
    "float_parsing": "must be a number", "float_type": "must be a number",
    "int_parsing": "must be an integer", "int_type": "must be an integer",
    "int_from_float": "must be an integer", "bool_parsing": "must be true or false",
    "bool_type": "must be true or false", "string_type": "must be a string",
    "list_type": "must be a list", "finite_number": "must be a finite number",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<="}


@functools.cache
def _adapters(cls: type) -> dict[str, TypeAdapter]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: TypeAdapter(hints[f.name]) for f in dataclasses.fields(cls)}


def _message(name: str, error: ValidationError, value: Any) -> str:
    details = [e for e in error.errors() if e["type"] != "none_required"] or error.errors()
    first = details[0]
    if first["type"] in _BOUNDS:
        bound = next(iter(first["ctx"].values()))
        return f"{name} must be {_BOUNDS[first['type']]} {bound}, got {value!r}"
    return f"{name} {_PHRASES.get(first['type'], first['msg'].lower())}, got {value!r}"


def coerce_fields(cls: type, values: dict[str, Any], error: type[SpadaptError]) -> dict[str, Any]:
    """`values` (field name -> value, for fields of the dataclass `cls`) validated and
    converted by pydantic; the first bad field raises `error` naming it."""
    adapters = _adapters(cls)
    out = {}
    for name, value in values.items():
        adapter = adapters[name]
        try:
            if isinstance(value, bool):  # True is no learning rate, though pydantic allows it
                adapter.validate_python(value, strict=True)
            out[name] = adapter.validate_python(value)
        except ValidationError as invalid:
            raise error(_message(name, invalid, value)) from None
    return out
