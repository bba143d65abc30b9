"""Training: the Accelerate loop (`loop.py`), its settings (`config.py`), checkpoints and
resume (`checkpoint.py`), cost meters (`meters.py`) and the memory/speed levers
(`levers.py`: checkpointing, bf16 autocast, a quantized base). `train` is imported lazily so that
reading `TrainConfig` (for `--help`) does not load torch."""

from .config import TrainConfig, TrainConfigError


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'spadapt.train' has no attribute {name!r}")


__all__ = ["TrainConfig", "TrainConfigError", "TrainResult", "train"]
