"""Base-model fingerprints: which base model an adapter was trained on, as hashes.

A fingerprint is the sha256 of a model's config (without keys that do not change its function,
such as label names), of its parameter names, shapes and dtypes, and of its weight values; task
heads are left out because an adapter carries its own. `check_fingerprint` compares a stored
fingerprint with a model's and names what differs. Nothing here knows of adapters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import AdapterFileError

IGNORED_CONFIG_KEYS = frozenset({  # config keys that do not change the base model's function
    "_name_or_path", "transformers_version", "architectures", "id2label", "label2id",
    "problem_type", "finetuning_task", "num_labels", "torch_dtype", "dtype", "_commit_hash",
    "_attn_implementation_autoset", "use_cache", "output_attentions", "output_hidden_states",
    "return_dict",
})
FINGERPRINT_PARTS = {  # fingerprint key -> what differs when it does
    "model_type": "model type",
    "config_sha256": "model config (hidden sizes, layers, vocabulary...)",
    "structure_sha256": "parameter names, shapes or dtypes",
    "weights_sha256": "weight values",
}


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def base_parameters(model: nn.Module, exclude: list[str]) -> list[tuple[str, torch.Tensor]]:
    """Base parameters by stable name (wrapper segments removed), sorted, without adapter
    internals and without the `exclude` top-level modules and their children."""
    out = []
    for name, parameter in model.named_parameters():
        if ".adapters." in f".{name}.":
            continue
        stable = name.replace(".base_layer", "")
        if any(stable == h or stable.startswith(h + ".") for h in exclude):
            continue
        out.append((stable, parameter))
    return sorted(out)


def base_fingerprint(model: nn.Module, exclude: list[str]) -> dict[str, Any]:
    """sha256 of the model's config, parameter names/shapes/dtypes and weights, without the
    `exclude` modules (task heads)."""
    config = getattr(model, "config", None)
    config_dict = config.to_dict() if config is not None else {}
    config_dict = {k: v for k, v in config_dict.items() if k not in IGNORED_CONFIG_KEYS}
    params = base_parameters(model, exclude)
    structure = [[name, list(p.shape), str(p.dtype)] for name, p in params]
    weights = hashlib.sha256()
    for _, parameter in params:
        data = parameter.detach().cpu().contiguous()
        weights.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return {
        "model_type": config_dict.get("model_type"),
        "config_sha256": sha256_hex(json.dumps(config_dict, sort_keys=True, default=str).encode()),
        "structure_sha256": sha256_hex(json.dumps(structure).encode()),
        "weights_sha256": weights.hexdigest(),
        "parameters": sum(p.numel() for _, p in params),
    }


def check_fingerprint(expected: dict, actual: dict, where: Path) -> None:
    """Raise AdapterFileError naming what differs when `actual` is not the `expected` base."""
    differing = [label for key, label in FINGERPRINT_PARTS.items()
                 if expected.get(key) != actual.get(key)]
    if differing:
        raise AdapterFileError(
            f"{where} was trained on a different base model: its {', '.join(differing)} differ "
            f"(adapter: {expected.get('model_type')}, {expected.get('parameters')} parameters; "
            f"this model: {actual.get('model_type')}, {actual.get('parameters')} parameters). "
            "Load it on the base model it was trained on."
        )
