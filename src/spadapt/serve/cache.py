"""The adapters a server knows, and an LRU cache of those resident in its models.

Known adapters are public name -> adapter directory (from the command line, `POST /v1/adapters`
or a registry reference). At most `max_resident` of them are loaded at once; asking for
another loads it (`AdaptedModel.load_adapter`, which verifies checksums and the base
fingerprint and never half-loads) after evicting the least recently used adapter that the
current batch does not need. A load that fails raises `ServeError` for the requests of that
adapter only; the cache and the other adapters are unchanged.

Not thread-safe by design: only the batcher's worker thread calls it (loads and forwards are
serialised on that thread, so no forward sees an adapter disappear under it).
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import AdapterConfig
from ..errors import SpadaptError
from ..model import AdaptedModel
from ..storage import CONFIG_FILE
from .errors import ServeError


@dataclass
class AdapterEntry:
    """One known adapter."""

    name: str  # public name (may hold "@version")
    directory: Path  # the adapter directory
    source: str  # where it came from, as given (a path or "registry:NAME@V")
    method: str  # AdapterConfig.method
    labels: list[str] = field(default_factory=list)  # classification labels; [] = causal LM
    internal: str | None = None  # its name inside the model while resident

    @property
    def task(self) -> str:
        return "classification" if self.labels else "causal_lm"

    @property
    def head(self) -> int:
        """Which model instance it lives in: its number of labels (0 = the causal LM)."""
        return len(self.labels)


def read_entry(name: str, directory: str | Path, source: str) -> AdapterEntry:
    """An entry from an adapter directory's config (cheap; full checks happen at load)."""
    path = Path(directory).expanduser()
    config_path = path / CONFIG_FILE
    try:
        saved = json.loads(config_path.read_text())
        config = AdapterConfig.from_dict(saved["config"])
    except FileNotFoundError:
        raise ServeError(400, "adapter_load_error", f"{config_path} does not exist: "
                         f"{path} is not a spadapt adapter directory") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ServeError(400, "adapter_load_error",
                         f"{config_path} is not a valid adapter config ({error})") from None
    return AdapterEntry(name, path, source, config.method, list(config.labels))


class AdapterCache:
    """Known adapters, and which of them are resident (LRU order, least recent first)."""

    def __init__(self, build_model: Callable[[int], AdaptedModel], max_resident: int) -> None:
        self._build_model = build_model  # head width -> a fresh AdaptedModel of the base
        self.max_resident = max_resident
        self.models: dict[int, AdaptedModel] = {}
        self.known: dict[str, AdapterEntry] = {}
        self.resident: OrderedDict[str, AdapterEntry] = OrderedDict()
        self.hits = self.misses = self.evictions = self.load_failures = 0
        self._ids = itertools.count()

    def model(self, head: int) -> AdaptedModel:
        """The model instance for adapters with `head` labels (0 = causal LM), built once."""
        if head not in self.models:
            self.models[head] = self._build_model(head)
        return self.models[head]

    def get(self, name: str) -> AdapterEntry:
        if name not in self.known:
            raise ServeError(404, "adapter_not_found", f"no adapter named {name!r}; known "
                             f"adapters: {sorted(self.known) or 'none'}")
        return self.known[name]

    def require_new(self, name: str) -> None:
        if name in self.known:
            raise ServeError(409, "adapter_exists", f"an adapter named {name!r} is already "
                             f"known (from {self.known[name].source}); DELETE "
                             f"/v1/adapters/{name} first")

    def add(self, entry: AdapterEntry) -> None:
        self.require_new(entry.name)
        self.known[entry.name] = entry

    def remove(self, name: str) -> AdapterEntry:
        """Forget an adapter, unloading it if it is resident."""
        entry = self.get(name)
        if name in self.resident:
            self._unload(name)
        del self.known[name]
        return entry

    def ensure(self, name: str, pinned: set[str]) -> AdapterEntry:
        """Make `name` resident (evicting the LRU adapter not in `pinned`) and mark it used."""
        entry = self.get(name)
        if name in self.resident:
            self.hits += 1
            self.resident.move_to_end(name)
            return entry
        self.misses += 1
        while len(self.resident) >= self.max_resident:
            victim = next((n for n in self.resident if n not in pinned), None)
            if victim is None:  # the batcher splits batches so that this cannot happen
                raise ServeError(503, "cache_full", "every resident adapter is in use")
            self._unload(victim)
            self.evictions += 1
        internal = f"a{next(self._ids)}"
        try:
            model = self.model(entry.head)
            model.load_adapter(entry.directory, internal)
        except ServeError:
            self.load_failures += 1
            raise
        except (SpadaptError, OSError) as error:  # load_adapter changed nothing
            self.load_failures += 1
            raise ServeError(422, "adapter_load_error",
                             f"adapter {name!r} could not be loaded: {error}") from None
        entry.internal = internal
        self.resident[name] = entry
        return entry

    def _unload(self, name: str) -> None:
        entry = self.resident.pop(name)
        self.models[entry.head].delete_adapter(entry.internal)
        entry.internal = None
