"""A frozen base held quantized: the linear weights nothing trains, stored in int8.

`quantize_frozen_linears(model, mode, keep)` replaces the weight of every `nn.Linear` whose
weight does not require grad (and which `keep` does not name) by torchao's int8 weight-only
tensor: one int8 per entry plus one scale per output row, dequantized inside each matmul, so
the base's linear weights take about a quarter of their fp32 bytes. Those layers become
`FrozenQuantizedLinear`s, whose backward dequantizes the weight again instead of keeping a
dequantized copy from the forward (which would cost more than the fp32 weight saved). Trained
values (adapters, heads, LoRA factors) stay in full precision. Works on CPU and CUDA; torchao
is an optional dependency (`pip install torchao`), imported only here and only when asked for.

"nf4" (and bitsandbytes' int8) needs bitsandbytes on a CUDA GPU; it is refused with a message
that names what is missing. `dequantized(tensor)` gives any weight as a plain tensor (itself
when it is not quantized); `is_quantized` tells them apart. Nothing here knows of adapters.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import torch
from torch import nn

from .errors import SpadaptError

MODES = ("none", "int8", "nf4")


class QuantizationError(SpadaptError):
    """A base quantization that cannot be done here."""


def is_quantized(tensor: torch.Tensor) -> bool:
    """Whether `tensor` is a quantized tensor subclass (torchao's), not a plain tensor."""
    return type(tensor) not in (torch.Tensor, nn.Parameter) and hasattr(tensor, "dequantize")


def dequantized(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` as a plain tensor of its float values (`tensor` itself when not quantized)."""
    return tensor.dequantize() if is_quantized(tensor) else tensor


# Loggers torchao's import writes to: its optional CUDA kernels that fail to load on a CPU
# build, no Triton, and torch's notes on its enums. None of it is news to a user.
_NOISY_LOGGERS = ("torchao", "torchao.kernel.intmm", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_torchao() -> Iterator[None]:
    """Import-time notes of torchao silenced (PEFT imports torchao when it is installed)."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _torchao_int8():
    with quiet_torchao():
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise QuantizationError(
                "base_quantization int8 needs torchao: pip install torchao") from None
    return quantize_, Int8WeightOnlyConfig


def quantize_frozen_linears(model: nn.Module, mode: str,
                            keep: Callable[[str], bool] = lambda name: False) -> int:
    """Quantize, in place, the frozen `nn.Linear` weights of `model`, except its output
    embedding and those named by `keep` (called with each module's dotted name); returns how
    many were quantized."""
    if mode not in MODES:
        raise QuantizationError(f"base_quantization must be one of {list(MODES)}, got {mode!r}")
    if mode == "none":
        return 0
    if mode == "nf4":
        missing = "a CUDA GPU" if not torch.cuda.is_available() else "its support in spadapt"
        raise QuantizationError(
            "base_quantization nf4 needs bitsandbytes on a CUDA GPU, and this needs "
            f"{missing}; on CPU use base_quantization: int8 (torchao)")
    # the output embedding stays in full precision: it is often tied to the input embedding
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    chosen = {name for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and not module.weight.requires_grad
              and not is_quantized(module.weight) and module is not output and not keep(name)}
    if not chosen:
        return 0
    quantize_, config = _torchao_int8()
    quantize_(model, config(), filter_fn=lambda module, name: name in chosen)
    for name, module in model.named_modules():
        if name in chosen and type(module) is nn.Linear:
            module.__class__ = FrozenQuantizedLinear  # same state; a backward without copies
    return len(chosen)


class _FrozenQuantizedMatmul(torch.autograd.Function):
    """y = x Wᵀ + b with W quantized and frozen. The forward runs the quantized kernel with
    nothing saved; backward dequantizes W again for ∂L/∂x. Through autograd, torchao's linear
    would keep a dequantized fp32 copy of W from forward to backward: 4 bytes per entry on top
    of the int8 one, more than the fp32 base itself holds."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.weight = weight  # a parameter: held by the module anyway, no copy
        return torch.nn.functional.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_y @ dequantized(ctx.weight).to(grad_y.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_y.reshape(-1, grad_y.shape[-1]).sum(0)
        return grad_x, None, grad_bias


class FrozenQuantizedLinear(nn.Linear):
    """An `nn.Linear` whose frozen weight `quantize_frozen_linears` quantized: the same module
    and state, with a forward whose backward keeps no dequantized copy of the weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_quantized(self.weight):  # dequantized back in place, or never quantized
            return super().forward(x)
        return _FrozenQuantizedMatmul.apply(x, self.weight, self.bias)
