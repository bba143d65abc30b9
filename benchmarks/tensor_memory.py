"""Peak bytes of live tensors on the CPU, for the memory model to be checked against.

A process's resident high-water mark (what `spadapt.train` reports on CPU) also holds the
Python runtime, libraries, and heap pages the allocator keeps after tensors are freed, so it
cannot be predicted from shapes. `LiveTensorBytes` counts what a GPU's allocator would: the
storages of the tensors given at entry (weights, buffers) plus every storage an operator
creates while it is active (activations, gradients, optimizer state, temporaries, recomputed
activations), each until it is freed; `peak` is the largest sum seen. Views and in-place
results share their storage and count once; a quantized weight counts its int8 data and
scales. Temporaries inside one operator of a tensor subclass (a dequantized weight inside
torchao's matmul) are not seen: they live for that operator only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveTensorBytes(TorchDispatchMode):
    """`with LiveTensorBytes(model.parameters()) as meter: ...`; then `meter.peak` (bytes)."""

    def __init__(self, resident: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self._sizes: dict[int, int] = {}  # id(storage) -> bytes, while the storage lives
        self.current = 0  # bytes of live tracked storages now
        self.peak = 0  # the most there were at once
        for tensor in resident:
            self._track(tensor)

    def _track(self, tensor: torch.Tensor) -> None:
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu":
            return
        if tensor.layout != torch.strided:  # a sparse tensor (SHiRA's delta) is made of
            return  # values and indices that are counted where they were made
        if hasattr(tensor, "__tensor_flatten__"):  # a wrapper subclass (torchao's int8):
            for inner in tensor.__tensor_flatten__()[0]:  # its storage reports the float
                self._track(getattr(tensor, inner))  # size; its inner tensors hold the bytes
            return
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._sizes:
            return
        self._sizes[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            self._track(leaf)
        return out
