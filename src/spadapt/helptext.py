"""Help text that config dataclasses carry in their fields' metadata: `--help` and the recipe
documentation read it from there.

    learning_rate: float = described(1e-3, help="peak AdamW learning rate")
"""

from __future__ import annotations

import dataclasses
from typing import Any


def described(default: Any = dataclasses.MISSING, *, help: str,
              default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with `help` in its metadata (like `dataclasses.field`)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help})


def field_help(cls: type) -> dict[str, str]:
    """{field name: its help text} of a dataclass (fields without help are left out)."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(cls) if "help" in f.metadata}


def field_default(item: dataclasses.Field) -> Any:
    """A field's default value (its factory called), or dataclasses.MISSING."""
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def fields_help(cls: type, prefix: str) -> str:
    """One paragraph per field: `prefix.name (default): help`."""
    lines = []
    for item in dataclasses.fields(cls):
        default = field_default(item)
        shown = "" if default is dataclasses.MISSING else repr(default)
        lines.append(f"{prefix}.{item.name} ({shown}): {item.metadata.get('help', '')}")
    return "\n\n".join(lines)
