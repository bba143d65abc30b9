"""Training: the Accelerate loop (`loop.py`), its settings (`config.py`), checkpoints and
resume (`checkpoint.py`) and cost meters (`meters.py`). `train` is imported lazily so that
reading `TrainConfig` (for `--help`) does not load torch."""

from .config import TrainConfig, TrainConfigError


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'spadapt.train' has no attribute {name!r}")


__all__ = ["TrainConfig", "TrainConfigError", "TrainResult", "train"]
