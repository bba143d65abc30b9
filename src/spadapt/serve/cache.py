"""The adapters a server knows, and an LRU cache of those resident in its models.

Known adapters are public name -> adapter directory (from the command line, `POST /v1/adapters`
or a registry reference), with the task and head width that the directory records. At most
`max_resident` of them are loaded at once; asking for another loads it
(`AdaptedModel.load_adapter`, which verifies checksums and the base fingerprint and never
half-loads) after evicting the least recently used adapter that the current batch does not
need. A load that fails raises `ServeError` for the requests of that adapter only; the cache
and the other adapters are unchanged.

Not thread-safe by design: only the batcher's worker thread changes it (loads and forwards are
serialised on that thread, so no forward sees an adapter disappear under it); the routes only
read it, through methods that return copies (`names`, `entries`, `lookup`, `resident_names`).
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
from ..storage import CONFIG_FILE, read_adapter_task
from .errors import ServeError
from .runner import ServedBase


@dataclass
class AdapterEntry:
    """One known adapter."""

    name: str  # public name (may hold "@version")
    directory: Path  # the adapter directory
    source: str  # where it came from, as given (a path or "registry:NAME@V")
    method: str  # AdapterConfig.method
    task: str  # what it serves: "classification" (/v1/classify) or "causal_lm" (completions)
    head: int  # which model instance it lives in: its classifier width (0 = the causal LM)
    labels: list[str] = field(default_factory=list)  # class names; [] unless classification
    internal: str | None = None  # its name inside the model while resident


def read_entry(name: str, directory: str | Path, source: str, base: ServedBase) -> AdapterEntry:
    """An entry from an adapter directory; its files are verified, the model is not touched.

    The task and the head width are what the directory records (`storage.read_adapter_task`),
    never guessed from a missing field. An adapter that no model instance of `base` can serve
    is refused here, before it is registered.
    """
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
    try:
        stored = read_adapter_task(path)  # checks the files against the manifest
    except SpadaptError as error:  # names the file and what is wrong with it
        raise ServeError(422, "adapter_load_error",
                         f"adapter {name!r} could not be loaded: {error}") from None
    if stored.task == "classification":
        return AdapterEntry(name, path, source, config.method, "classification",
                            stored.head_width, list(stored.labels))
    if not base.causal:  # a causal-LM adapter, or one with no head of its own
        what = ("is a causal-LM adapter" if stored.task == "causal_lm" else
                "has no head of its own (it was saved without labels or a language-model head)")
        raise ServeError(400, "wrong_task", f"adapter {name!r} ({path}) {what}, and the base "
                         f"model {base.reference!r} is not a causal language model, so the "
                         "server cannot use it; on this base it serves classification adapters "
                         "(saved with labels)")
    return AdapterEntry(name, path, source, config.method, "causal_lm", 0)


class AdapterCache:
    """Known adapters, and which of them are resident (LRU order, least recent first)."""

    def __init__(self, build_model: Callable[[int], AdaptedModel], max_resident: int) -> None:
        self._build_model = build_model  # head width -> a fresh AdaptedModel of the base
        self.max_resident = max_resident
        self._models: dict[int, AdaptedModel] = {}
        self._known: dict[str, AdapterEntry] = {}  # in registration order
        self._resident: OrderedDict[str, AdapterEntry] = OrderedDict()
        self.hits = self.misses = self.evictions = self.load_failures = 0  # read by /metrics
        self._ids = itertools.count()

    # What is known and resident ---------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __len__(self) -> int:
        return len(self._known)

    def names(self) -> list[str]:
        """Known adapters' public names, in the order they were registered."""
        return list(self._known)

    def entries(self) -> list[AdapterEntry]:
        """Known adapters, in the order they were registered."""
        return list(self._known.values())

    def lookup(self, name: str) -> AdapterEntry | None:
        """The known adapter called `name`, or None."""
        return self._known.get(name)

    def get(self, name: str) -> AdapterEntry:
        """The known adapter called `name`; a 404 `ServeError` if there is none."""
        if name not in self._known:
            raise ServeError(404, "adapter_not_found", f"no adapter named {name!r}; known "
                             f"adapters: {sorted(self._known) or 'none'}")
        return self._known[name]

    def resident_names(self) -> list[str]:
        """Adapters loaded in a model now, least recently used first."""
        return list(self._resident)

    def is_resident(self, name: str) -> bool:
        return name in self._resident

    # Changes (model thread only) ----------------------------------------------------------------
    def model(self, head: int) -> AdaptedModel:
        """The model instance for adapters with a classifier of width `head` (0 = causal LM),
        built once."""
        if head not in self._models:
            self._models[head] = self._build_model(head)
        return self._models[head]

    def require_new(self, name: str) -> None:
        if name in self._known:
            raise ServeError(409, "adapter_exists", f"an adapter named {name!r} is already "
                             f"known (from {self._known[name].source}); DELETE "
                             f"/v1/adapters/{name} first")

    def add(self, entry: AdapterEntry) -> None:
        self.require_new(entry.name)
        self._known[entry.name] = entry

    def remove(self, name: str) -> AdapterEntry:
        """Forget an adapter, unloading it if it is resident."""
        entry = self.get(name)
        if name in self._resident:
            self._unload(name)
        del self._known[name]
        return entry

    def ensure(self, name: str, pinned: set[str]) -> AdapterEntry:
        """Make `name` resident (evicting the LRU adapter not in `pinned`) and mark it used."""
        entry = self.get(name)
        if name in self._resident:
            self.hits += 1
            self._resident.move_to_end(name)
            return entry
        self.misses += 1
        while len(self._resident) >= self.max_resident:
            victim = next((n for n in self._resident if n not in pinned), None)
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
        self._resident[name] = entry
        return entry

    def _unload(self, name: str) -> None:
        entry = self._resident.pop(name)
        self._models[entry.head].delete_adapter(entry.internal)
        entry.internal = None
