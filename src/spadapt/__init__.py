"""spadapt: sparse adapters on frozen Hugging Face transformers — train, measure, ship, serve.

Public API (see README and ../shared/DESIGN.md):
    cfg = spadapt.AdapterConfig(method="bottleneck", density=0.2, scorer="snip")
    model = spadapt.attach(base_model, cfg, calibration=batches)
    model.save_adapter(path); model = spadapt.load_adapter(base_model, path)

Names are imported lazily, so `import spadapt` (and `spadapt --help`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "AdaptedModel": "model",
    "AdapterConfig": "config",
    "AdapterError": "model",
    "AdapterFileError": "errors",
    "ConfigError": "config",
    "SpadaptError": "errors",
    "attach": "model",
    "load_adapter": "model",
}

if TYPE_CHECKING:
    from .config import AdapterConfig, ConfigError
    from .errors import AdapterFileError, SpadaptError
    from .model import AdaptedModel, AdapterError, attach, load_adapter


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'spadapt' has no attribute {name!r}")


__all__ = [
    "AdaptedModel",
    "AdapterConfig",
    "AdapterError",
    "AdapterFileError",
    "ConfigError",
    "SpadaptError",
    "__version__",
    "attach",
    "load_adapter",
]
