"""spadapt: sparse adapters on frozen Hugging Face transformers — train, measure, ship, serve.

Public API (see README and DESIGN):
    cfg = spadapt.AdapterConfig(method="bottleneck", density=0.2, scorer="snip")
    model = spadapt.attach(base_model, cfg, calibration=batches)
    model.save_adapter(path); model = spadapt.load_adapter(base_model, path)
"""

__version__ = "0.1.0"

from .config import AdapterConfig, ConfigError  # noqa: E402
from .model import AdaptedModel, AdapterError, attach  # noqa: E402
from .storage import AdapterFileError, load_adapter  # noqa: E402

__all__ = [
    "AdaptedModel",
    "AdapterConfig",
    "AdapterError",
    "AdapterFileError",
    "ConfigError",
    "__version__",
    "attach",
    "load_adapter",
]
