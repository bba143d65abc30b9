"""Adapter names: the one rule for what an adapter may be called, everywhere.

A name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, without
'..' or a path separator; the registry, the server and `AdaptedModel` all check names here.
`__base__` is reserved: it routes a row to the bare base model. A reference to a registered
version is `NAME@VERSION` (`NAME` alone: the latest). Each caller passes the error type its
users catch (RegistryError, AdapterError, ...).
"""

from __future__ import annotations

import re

from .errors import SpadaptError

BASE_NAME = "__base__"  # routes a row to the base model without any adapter
ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION = re.compile(r"[1-9][0-9]{0,17}")
NAME_RULE = "use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


class AdapterNameError(SpadaptError):
    """A name that no adapter may have, or a malformed NAME@VERSION reference."""


def _why_not(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "it is empty; give the adapter a name"
    if "/" in name or "\\" in name:
        return "it contains a path separator; use letters, digits, '_', '.' and '-'"
    if ".." in name:
        return "it contains '..'"
    if name == BASE_NAME:
        return "it is reserved (it serves the bare base model)"
    if not ADAPTER_NAME.fullmatch(name):
        return NAME_RULE
    return None


def check_adapter_name(name: object, error: type[SpadaptError] = AdapterNameError) -> str:
    """`name` if it can name an adapter, else `error` saying why."""
    why = _why_not(name)
    if why is not None:
        raise error(f"invalid adapter name {name!r}: {why}")
    return name


def parse_ref(ref: object, error: type[SpadaptError] = AdapterNameError) -> tuple[str, int | None]:
    """"NAME" → (NAME, None) (the latest version); "NAME@3" → (NAME, 3); else `error`."""
    if not isinstance(ref, str):
        raise error(f"an adapter reference must be a string, got {ref!r}")
    name, at, version = ref.partition("@")
    check_adapter_name(name, error)
    if not at:
        return name, None
    if not VERSION.fullmatch(version):
        raise error(f"bad adapter reference {ref!r}: write NAME or NAME@VERSION, "
                    "VERSION a positive whole number (NAME@3)")
    return name, int(version)
