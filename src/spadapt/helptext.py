"""`--help` text from config dataclasses: each field's name, default and its source comment."""

from __future__ import annotations

import dataclasses
import inspect
import re

_FIELD = re.compile(r"^\s+(\w+):[^=#]+(?:=[^#]*)?#\s*(.+)$")


def field_comments(cls: type) -> dict[str, str]:
    """{field name: the comment written after it in the class body}."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = _FIELD.match(line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def fields_help(cls: type, prefix: str) -> str:
    """One line per field: `prefix.name (default): comment`."""
    comments = field_comments(cls)
    lines = []
    for item in dataclasses.fields(cls):
        default = item.default if item.default is not dataclasses.MISSING else (
            item.default_factory() if item.default_factory is not dataclasses.MISSING else "")
        lines.append(f"{prefix}.{item.name} ({default!r}): {comments.get(item.name, '')}")
    return "\n\n".join(lines)
