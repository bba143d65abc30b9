"""Training checkpoints: written atomically, in safetensors and JSON only (no pickle).

A checkpoint directory holds `model.safetensors` (the trained tensors: trainable parameters and
adapter buffers such as masks), `optimizer.safetensors` (AdamW moments, flattened), and
`trainer_state.json` (step, epoch, position in the epoch, history, best metric, optimizer
param groups, scheduler state, torch RNG state). `latest` and `best` are two such directories.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from .. import atomic
from ..errors import SpadaptError


class CheckpointError(SpadaptError):
    """A checkpoint is missing or unreadable."""


def trained_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters plus every tensor inside adapter modules (masks, gates, scores)."""
    out = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad or ".adapters." in name:
            out[name] = parameter.detach()
    for name, buffer in model.named_buffers():
        if ".adapters." in name:
            out[name] = buffer.detach()
    return {k: v.contiguous().clone() for k, v in out.items()}


@torch.no_grad()
def restore_tensors(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Put saved tensors back; buffers that were None when the model was built are created."""
    for name, value in tensors.items():
        owner_name, _, attribute = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        if attribute in owner._parameters and owner._parameters[attribute] is not None:
            owner._parameters[attribute].copy_(value)
        elif attribute in owner._buffers:
            current = owner._buffers[attribute]
            owner._buffers[attribute] = value.to(current.device if current is not None
                                                 else value.device).clone()
        else:
            raise CheckpointError(f"checkpoint tensor {name!r} has no place in this model")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in {**tensors, **meta["scalars"]}.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, trainer_state: dict) -> None:
    """Write a checkpoint directory atomically (temp dir, then rename over the old one)."""
    with atomic.directory(directory) as staging:
        safetensors.torch.save_file(trained_tensors(model), staging / "model.safetensors")
        opt_tensors, opt_meta = _optimizer_tensors(optimizer)
        safetensors.torch.save_file(opt_tensors, staging / "optimizer.safetensors")
        state = {**trainer_state, "optimizer": opt_meta,
                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                 "torch_rng": torch.get_rng_state().tolist()}
        (staging / "trainer_state.json").write_text(json.dumps(state))


def load_checkpoint(directory: Path, model: nn.Module, optimizer=None, scheduler=None) -> dict:
    """Restore model tensors (and optimizer/scheduler/RNG when given); returns trainer state."""
    try:
        state = json.loads((directory / "trainer_state.json").read_text())
        tensors = safetensors.torch.load_file(directory / "model.safetensors")
        opt_tensors = safetensors.torch.load_file(directory / "optimizer.safetensors")
    except (OSError, json.JSONDecodeError, Exception) as error:  # safetensors raises several
        raise CheckpointError(f"cannot read checkpoint {directory}: {error}") from None
    restore_tensors(model, tensors)
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(opt_tensors, state["optimizer"]))
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if optimizer is not None:
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    return state
