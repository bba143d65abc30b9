"""`ServeConfig`: what the server loads and the limits it enforces; validated on creation.

Adapter sources are `{public name: source}` where a source is an adapter directory or
`"registry:NAME[@V]"` (needs `registry`). Public names may contain `@` (versions); inside the
model every resident adapter gets a short internal name, so any public name works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SpadaptError
from ..names import AdapterNameError, parse_ref

REGISTRY_PREFIX = "registry:"


class ServeConfigError(SpadaptError):
    """A server option that cannot work; the message names the option."""


@dataclass
class ServeConfig:
    model: str  # the base model: a Hugging Face folder or builtin:NAME (one base per server)
    adapters: dict[str, str] = field(default_factory=dict)  # public name -> dir or registry:REF
    host: str = "127.0.0.1"  # interface to bind; loopback unless you mean to expose it
    port: int = 8000  # TCP port (0 = any free port)
    max_batch_size: int = 32  # rows (texts or prompts) in one forward
    max_batch_wait_ms: float = 5.0  # how long the first queued row waits for others
    max_resident_adapters: int = 8  # adapters held in the model at once (LRU beyond that)
    max_texts: int = 64  # texts per /v1/classify request
    max_text_chars: int = 4000  # characters per text, prompt or chat message
    max_new_tokens: int = 256  # upper bound on a completion's max_tokens
    max_length: int = 512  # tokens per text / prompt after truncation (capped by the model)
    max_queued_rows: int = 4096  # rows waiting for the worker; more gets 429
    max_body_bytes: int = 8 * 1024 * 1024  # request bodies larger than this get 413
    api_key: str | None = None  # if set, every route but /healthz needs "Bearer <api_key>"
    registry: str | None = None  # spadapt registry root for NAME[@V] references
    load_at_start: bool = True  # load the first max_resident_adapters adapters at start

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ServeConfigError("model must name the base model (a folder or builtin:NAME)")
        positive = ("max_batch_size", "max_resident_adapters", "max_texts", "max_text_chars",
                    "max_new_tokens", "max_length", "max_queued_rows", "max_body_bytes")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ServeConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.max_batch_wait_ms, int | float) or self.max_batch_wait_ms < 0:
            raise ServeConfigError(
                f"max_batch_wait_ms must be a number >= 0, got {self.max_batch_wait_ms!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ServeConfigError(f"port must be in 0..65535, got {self.port!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ServeConfigError("api_key is empty; leave it unset to disable authentication")
        for name, source in self.adapters.items():
            parse_ref(name, ServeConfigError)  # NAME or NAME@VERSION (spadapt.names)
            if not source:
                raise ServeConfigError(f"adapter {name!r}: give NAME=DIR with both parts")
            if source.startswith(REGISTRY_PREFIX) and self.registry is None:
                raise ServeConfigError(
                    f"adapter {name!r} comes from {source!r} but no registry is configured; "
                    "pass --registry PATH")


def is_adapter_reference(name: str) -> bool:
    """Whether `name` can name an adapter on the server: NAME or NAME@VERSION."""
    try:
        parse_ref(name)
    except AdapterNameError:
        return False
    return True


def parse_adapter_option(value: str) -> tuple[str, str]:
    """`NAME=DIR` -> (NAME, DIR); a bare `NAME[@V]` -> (NAME[@V], "registry:NAME[@V]")."""
    name, sep, source = value.partition("=")
    name, source = name.strip(), source.strip()
    if not sep:
        if not name:
            raise ServeConfigError("--adapter needs NAME=DIR or a registry reference NAME[@V]")
        return name, REGISTRY_PREFIX + name
    if not name or not source:
        raise ServeConfigError(f"--adapter {value!r}: expected NAME=DIR")
    return name, source
