"""The memory and speed levers of a training run, each applied to a model before it trains.

- `checkpoint_activations(model)`: transformers' gradient checkpointing, non-reentrant, so
  the adapters inside the recomputed blocks still get their gradients.
- `quantize_base(model, mode)`: the frozen linear weights held quantized (`spadapt.quantize`);
  an `AdaptedModel` takes its fingerprints first.
- `autocast(precision, device)`: the forward under bf16 autocast for precision "bf16" (what
  Accelerate's mixed precision does); trained values and optimizer state stay fp32.
- `resolve_precision(precision, device)`: "auto" made concrete: bf16 where the device computes
  it natively (`native_bf16`), else fp32.

`spadapt.train` applies them from its config; the decoder benchmarks apply the same functions
to the competitors they time, so both measure one implementation.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from ..model import AdaptedModel
from ..quantize import is_quantized, quantize_frozen_linears
from .config import TrainConfigError

PRECISIONS = ("fp32", "bf16")
PRECISION_SETTINGS = (*PRECISIONS, "auto")  # what a run may ask for (`resolve_precision`)
# CPU feature flags (Linux /proc/cpuinfo) of native bf16 matrix products: AVX512-BF16 (Intel
# Cooper Lake and later, AMD Zen 4 and later) and AMX (Intel Sapphire Rapids and later)
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPU_INFO = Path("/proc/cpuinfo")


def native_bf16(device: torch.device | str, cpu_info: Path = CPU_INFO) -> bool:
    """Does `device` compute bf16 matrix products natively, so that bf16 autocast is faster
    than fp32 there? A CUDA GPU: `torch.cuda.is_bf16_supported()`. A CPU: one of
    `NATIVE_BF16_CPU_FLAGS` in `cpu_info`; False where that file cannot be read (not Linux),
    since emulated bf16 is slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        text = cpu_info.read_text(errors="replace")
    except OSError:
        return False
    flags = {word for line in text.splitlines() if line.startswith("flags")
             for word in line.partition(":")[2].split()}
    return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: torch.device | str) -> tuple[str, str]:
    """(precision, why) for a run's `precision` setting: "fp32" and "bf16" as they are
    (why: "set"); "auto" is bf16 where `native_bf16(device)` (why: "native_bf16"), else fp32
    (why: "no_native_bf16")."""
    if precision in PRECISIONS:
        return precision, "set"
    if precision not in PRECISION_SETTINGS:
        raise TrainConfigError(f"precision must be one of {PRECISION_SETTINGS}, got "
                               f"{precision!r}")
    if native_bf16(device):
        return "bf16", "native_bf16"
    return "fp32", "no_native_bf16"


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast for precision "bf16", a no-op context for "fp32". Set per run, since
    Accelerate's process-wide mixed-precision state cannot change between runs."""
    if precision not in PRECISIONS:
        raise TrainConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")


def checkpoint_activations(model: nn.Module) -> None:
    """Turn on transformers' gradient checkpointing for the (base) model, non-reentrant: the
    adapters inside the recomputed blocks get their gradients, and the frozen base's inputs
    need not require grad."""
    base = model.base_model if isinstance(model, AdaptedModel) else model
    enable = getattr(base, "gradient_checkpointing_enable", None)
    if enable is None or not getattr(base, "supports_gradient_checkpointing", False):
        raise TrainConfigError(f"gradient_checkpointing: {type(base).__name__} does not "
                               "support transformers' gradient checkpointing")
    enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def quantize_base(model: nn.Module, mode: str) -> int:
    """`base_quantization`: the frozen linear weights of `model` held quantized; returns how
    many were. PEFT's untouched copy of a trained head (modules_to_save) stays as it is."""
    if isinstance(model, AdaptedModel):
        count = model.quantize_base(mode)
    else:
        count = quantize_frozen_linears(model, mode, lambda name: "original_module" in name)
    already = any(is_quantized(m.weight) for m in model.modules() if isinstance(m, nn.Linear))
    if count == 0 and not already:
        raise TrainConfigError(f"base_quantization {mode}: no frozen linear weight to quantize "
                               "(full fine-tuning trains every weight); use it with adapters")
    return count
