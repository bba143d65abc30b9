"""The adapter directory: only kept values, positions near the information bound, checked on load.

```
adapter_config.json   {"format_version", "spadapt_version", "adapter_name", "config": AdapterConfig}
adapter.safetensors   two tensors: "values" (every kept value, fp32/fp16/bf16, key order) and
                      "positions" (uint8: each sparse tensor's positions, encoded by
                      spadapt.codecs in its smallest form); the layout (key, shape, nnz,
                      encoding, position bytes) is in the safetensors metadata
manifest.json         sha256 + size of both files, the base-model fingerprint, per-tensor nnz
```

Position encodings per tensor: "dense" (all kept, no positions), "seeded" (a random mask that
`spadapt.masks` rebuilds from the adapter's seed; only its sha256 is stored, in the manifest),
or a codec from `spadapt.codecs` ("bitmask", "elias_fano", "empty", "full").

Loading reads and verifies everything (checksums, fingerprint, layout, positions) before the
model is touched; if anything after that fails, the adapter is removed again, so a model is
never left half-loaded. Writes go to a temporary directory renamed into place. Safetensors only.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from . import __version__, atomic
from .arch import head_modules
from .codecs import CodecError, decode_positions, encode_positions, information_bound_bits
from .config import AdapterConfig, ConfigError
from .errors import SpadaptError
from .methods import StoredTensor

FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_IGNORED_CONFIG_KEYS = {  # config keys that do not change the base model's function
    "_name_or_path", "transformers_version", "architectures", "id2label", "label2id",
    "problem_type", "finetuning_task", "num_labels", "torch_dtype", "dtype", "_commit_hash",
    "_attn_implementation_autoset", "use_cache", "output_attentions", "output_hidden_states",
    "return_dict",
}


class AdapterFileError(SpadaptError):
    """An adapter directory is missing, corrupted, hand-edited or for another base model."""


def information_bound_bytes(manifest: dict, value_bytes: int) -> float:
    """The least bytes any file could hold a manifest's adapter in: every kept value at
    `value_bytes`, plus log2 C(size, nnz) bits for the positions of each sparse tensor."""
    total_bits = 0.0
    for entry in manifest["tensors"].values():
        total_bits += entry["nnz"] * value_bytes * 8
        if entry["encoding"] != "dense":
            total_bits += information_bound_bits(math.prod(entry["shape"]), entry["nnz"])
    return total_bits / 8


# Fingerprints ---------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _base_parameters(model: nn.Module, exclude: list[str]) -> list[tuple[str, torch.Tensor]]:
    """Base parameters by stable name, without adapter internals and excluded heads."""
    out = []
    for name, parameter in model.named_parameters():
        if ".adapters." in f".{name}.":
            continue
        stable = name.replace(".base_layer", "")
        if any(stable == h or stable.startswith(h + ".") for h in exclude):
            continue
        out.append((stable, parameter))
    return sorted(out)


def base_fingerprint(model: nn.Module, exclude: list[str] | None = None) -> dict[str, Any]:
    """sha256 of the base model's config, parameter names/shapes/dtypes and weights.

    Task heads (`exclude`, default: the family's heads) are left out: the adapter carries them.
    """
    exclude = head_modules(model, None) if exclude is None else exclude
    config = getattr(model, "config", None)
    config_dict = config.to_dict() if config is not None else {}
    config_dict = {k: v for k, v in config_dict.items() if k not in _IGNORED_CONFIG_KEYS}
    params = _base_parameters(model, exclude)
    structure = [[name, list(p.shape), str(p.dtype)] for name, p in params]
    weights = hashlib.sha256()
    for _, parameter in params:
        data = parameter.detach().cpu().contiguous()
        weights.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return {
        "model_type": config_dict.get("model_type"),
        "config_sha256": _sha256(json.dumps(config_dict, sort_keys=True, default=str).encode()),
        "structure_sha256": _sha256(json.dumps(structure).encode()),
        "weights_sha256": weights.hexdigest(),
        "parameters": sum(p.numel() for _, p in params),
    }


_FINGERPRINT_PARTS = {
    "model_type": "model type",
    "config_sha256": "model config (hidden sizes, layers, vocabulary...)",
    "structure_sha256": "parameter names, shapes or dtypes",
    "weights_sha256": "weight values",
}


def check_fingerprint(expected: dict, actual: dict, where: Path) -> None:
    differing = [label for key, label in _FINGERPRINT_PARTS.items()
                 if expected.get(key) != actual.get(key)]
    if differing:
        raise AdapterFileError(
            f"{where} was trained on a different base model: its {', '.join(differing)} differ "
            f"(adapter: {expected.get('model_type')}, {expected.get('parameters')} parameters; "
            f"this model: {actual.get('model_type')}, {actual.get('parameters')} parameters). "
            "Load it on the base model it was trained on."
        )


# Encoding ---------------------------------------------------------------------------------------
def _value_dtype(config: AdapterConfig, tensors: dict[str, StoredTensor],
                 save_dtype: str | None) -> torch.dtype:
    name = save_dtype or config.save_dtype
    if name is not None:
        if name not in VALUE_DTYPES:
            raise ConfigError(f"save_dtype={name!r} is not one of {list(VALUE_DTYPES)}")
        return VALUE_DTYPES[name]
    for stored in tensors.values():
        return stored.values.dtype
    return torch.float32


def encode_adapter(tensors: dict[str, StoredTensor], value_dtype: torch.dtype,
                   extra_metadata: dict[str, str] | None = None
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, dict]]:
    """(safetensors tensors, safetensors metadata, manifest tensor entries)."""
    layout, values, blobs, entries = [], [], [], {}
    for key in sorted(tensors):
        stored = tensors[key]
        n = int(np.prod(stored.shape)) if stored.shape else 1
        entry = {"shape": list(stored.shape), "nnz": int(stored.values.numel())}
        if stored.positions is None:
            encoding, payload = "dense", b""
        else:
            positions = stored.positions.detach().cpu().numpy().astype(np.int64)
            if stored.seeded:
                encoding, payload = "seeded", b""
                entry["positions_sha256"] = _sha256(positions.tobytes())
            else:
                encoding, payload = encode_positions(positions, n)
        entry["encoding"] = encoding
        entries[key] = entry
        layout.append([key, list(stored.shape), entry["nnz"], encoding, len(payload)])
        values.append(stored.values.detach().cpu().flatten().to(value_dtype))
        blobs.append(payload)
    blob = b"".join(blobs)
    out = {
        "values": torch.cat(values) if values else torch.zeros(0, dtype=value_dtype),
        "positions": torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob
        else torch.zeros(0, dtype=torch.uint8),
    }
    metadata = {"format": "spadapt-adapter", "format_version": str(FORMAT_VERSION),
                "layout": json.dumps(layout, separators=(",", ":")), **(extra_metadata or {})}
    return out, metadata, entries


def _adapter_payload(model, adapter_name: str, save_dtype: str | None = None):
    config = model.configs[adapter_name]
    tensors = model.export_adapter(adapter_name)
    dtype = _value_dtype(config, tensors, save_dtype)
    return encode_adapter(tensors, dtype)


def encoded_adapter_bytes(model, adapter_name: str) -> int:
    """Exact size in bytes of the adapter.safetensors that `save_adapter` would write."""
    tensors, metadata, _ = _adapter_payload(model, adapter_name)
    return len(safetensors.torch.save(tensors, metadata=metadata))


def save_adapter(model, path: str | Path, adapter_name: str, save_dtype: str | None = None,
                 base_model: str | None = None) -> Path:
    """Write `adapter_name` of an AdaptedModel to the directory `path` (atomically).

    base_model: how to find the base again (e.g. "builtin:minilm" or a folder); recorded for
    `spadapt eval/predict`, never trusted over the fingerprint.
    """
    from .model import AdapterError

    target = Path(path)
    config = model._require(adapter_name)
    if not model.masks_final(adapter_name):
        raise AdapterError(
            f"adapter {adapter_name!r} uses schedule {config.schedule!r} and its masks are not "
            "final yet; call model.finalize_masks() after training, then save"
        )
    tensors, metadata, entries = _adapter_payload(model, adapter_name, save_dtype)
    weights = safetensors.torch.save(tensors, metadata=metadata)
    config_bytes = json.dumps({
        "format_version": FORMAT_VERSION,
        "spadapt_version": __version__,
        "adapter_name": adapter_name,
        "base_model": base_model,
        "config": config.to_dict(),
    }, indent=2, sort_keys=True).encode()
    exclude = head_modules(model.base_model, config.modules_to_save)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            CONFIG_FILE: {"sha256": _sha256(config_bytes), "bytes": len(config_bytes)},
            WEIGHTS_FILE: {"sha256": _sha256(weights), "bytes": len(weights)},
        },
        "base_model": {**model.fingerprint(exclude),
                       "name_or_path": getattr(model.base_model.config, "_name_or_path", "")},
        "excluded_heads": exclude,
        "value_dtype": str(tensors["values"].dtype).removeprefix("torch."),
        "nnz": sum(e["nnz"] for e in entries.values()),
        "tensors": entries,
    }
    if target.exists() and not (target / MANIFEST_FILE).is_file():
        raise AdapterFileError(
            f"{target} exists and is not an adapter directory; refusing to overwrite it")
    with atomic.directory(target) as staging:
        atomic.write_file(staging / CONFIG_FILE, config_bytes)
        atomic.write_file(staging / WEIGHTS_FILE, weights)
        atomic.write_file(staging / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return target


# Reading ------------------------------------------------------------------------------------------
def _missing(path: Path) -> AdapterFileError:
    return AdapterFileError(f"{path} is missing: not a complete spadapt adapter directory")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise _missing(path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AdapterFileError(f"{path} is not valid JSON ({error}); it is corrupted") from None
    if not isinstance(data, dict):
        raise AdapterFileError(f"{path} must hold a JSON object")
    return data


def _read_checked(directory: Path, name: str, manifest: dict) -> bytes:
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _missing(path) from None
    expected = manifest.get("files", {}).get(name)
    if not isinstance(expected, dict):
        raise AdapterFileError(f"{directory / MANIFEST_FILE} has no checksum for {name}")
    if len(data) != expected.get("bytes"):
        raise AdapterFileError(
            f"{path} has {len(data)} bytes but the manifest says {expected.get('bytes')}: "
            "the file is truncated or was changed"
        )
    if _sha256(data) != expected.get("sha256"):
        raise AdapterFileError(
            f"{path} does not match its sha256 in the manifest: the file is corrupted or was "
            "edited by hand"
        )
    return data


def _safetensors_metadata(data: bytes, path: Path) -> dict[str, str]:
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        return header.get("__metadata__") or {}
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise AdapterFileError(f"{path} has an unreadable safetensors header ({error})"
                               ) from None


def decode_adapter(data: bytes, path: Path) -> tuple[dict[str, StoredTensor], dict[str, str]]:
    """Parse adapter.safetensors bytes into StoredTensors ("seeded" positions left as None)."""
    metadata = _safetensors_metadata(data, path)
    if metadata.get("format") != "spadapt-adapter":
        raise AdapterFileError(f"{path} is not a spadapt adapter file")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise AdapterFileError(
            f"{path} has format version {metadata.get('format_version')}; this spadapt reads "
            f"version {FORMAT_VERSION}"
        )
    try:
        raw = safetensors.torch.load(data)
        layout = json.loads(metadata["layout"])
        values, blob = raw["values"], raw["positions"].numpy().tobytes()
    except Exception as error:  # safetensors raises several types for broken files
        raise AdapterFileError(f"{path} cannot be read as safetensors ({error})") from None
    tensors, value_offset, blob_offset = {}, 0, 0
    for entry in layout:
        try:
            key, shape, nnz, encoding, pos_bytes = entry
            shape = tuple(int(s) for s in shape)
            size = int(np.prod(shape)) if shape else 1
        except (TypeError, ValueError):
            raise AdapterFileError(f"{path}: malformed layout entry {entry!r}") from None
        if not 0 <= nnz <= size or value_offset + nnz > values.numel():
            raise AdapterFileError(f"{path}: tensor {key!r} claims {nnz} values, inconsistent "
                                   "with its shape or the stored values")
        payload = blob[blob_offset : blob_offset + pos_bytes]
        if len(payload) != pos_bytes:
            raise AdapterFileError(f"{path}: positions of tensor {key!r} are truncated")
        if encoding == "dense":
            if nnz != size:
                raise AdapterFileError(f"{path}: dense tensor {key!r} has {nnz} of {size} values")
            positions = None
        elif encoding == "seeded":
            positions = None
        else:
            try:
                positions = torch.from_numpy(decode_positions(encoding, payload, size, nnz))
            except CodecError as error:
                raise AdapterFileError(f"{path}: positions of tensor {key!r}: {error}") from None
        tensors[key] = StoredTensor(shape, values[value_offset : value_offset + nnz], positions,
                                    seeded=encoding == "seeded")
        value_offset += nnz
        blob_offset += pos_bytes
    if value_offset != values.numel() or blob_offset != len(blob):
        raise AdapterFileError(f"{path}: the layout does not account for every stored byte")
    return tensors, metadata


def read_adapter_dir(path: str | Path) -> tuple[AdapterConfig, dict, dict[str, StoredTensor], str]:
    """Verify and parse an adapter directory: (config, manifest, tensors, saved adapter name)."""
    directory = Path(path)
    if not directory.is_dir():
        raise AdapterFileError(f"{directory} is not a directory (expected a spadapt adapter dir)")
    manifest = _read_json(directory / MANIFEST_FILE)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise AdapterFileError(
            f"{directory / MANIFEST_FILE} has format version {manifest.get('format_version')}; "
            f"this spadapt reads version {FORMAT_VERSION}"
        )
    config_bytes = _read_checked(directory, CONFIG_FILE, manifest)
    weights = _read_checked(directory, WEIGHTS_FILE, manifest)
    try:
        saved = json.loads(config_bytes)
        config = AdapterConfig.from_dict(saved["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as error:
        message = f"{directory / CONFIG_FILE}: invalid adapter config ({error})"
        raise AdapterFileError(message) from None
    tensors, _ = decode_adapter(weights, directory / WEIGHTS_FILE)
    return config, manifest, tensors, saved.get("adapter_name", "default")


def load_adapter_into(model, path: str | Path, adapter_name: str | None = None) -> str:
    """Load an adapter directory into an AdaptedModel; verified first, rolled back on failure."""
    directory = Path(path)
    config, manifest, tensors, saved_name = read_adapter_dir(directory)
    name = adapter_name or saved_name
    model._check_new_name(name)
    exclude = manifest.get("excluded_heads", [])
    check_fingerprint(manifest.get("base_model", {}), model.fingerprint(exclude),
                      directory / MANIFEST_FILE)
    built = model._build(name, config)
    model.configs[name] = config
    try:
        _import_tensors(model, name, config, built, tensors, manifest, directory)
    except BaseException:
        model._forget(name)
        raise
    model.install_final_masks(name)
    return name


def _import_tensors(model, name, config, built, tensors, manifest, directory) -> None:
    from .model import KEY_SEPARATOR

    if any(stored.seeded for stored in tensors.values()):
        model._choose_masks(name, config, built, None)  # rebuild the seeded random masks
    expected = model.export_adapter(name)
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise AdapterFileError(
            f"{directory / WEIGHTS_FILE} does not fit this model: missing tensors "
            f"{missing[:5]}, unexpected tensors {unexpected[:5]}"
        )
    for key, stored in tensors.items():
        if tuple(expected[key].shape) != stored.shape:
            raise AdapterFileError(
                f"{directory / WEIGHTS_FILE}: tensor {key!r} has shape {stored.shape}, the model "
                f"needs {tuple(expected[key].shape)}"
            )
        if stored.seeded:
            positions = expected[key].positions.cpu().numpy().astype(np.int64)
            entry = manifest.get("tensors", {}).get(key, {})
            if _sha256(positions.tobytes()) != entry.get("positions_sha256") or (
                positions.size != stored.values.numel()
            ):
                raise AdapterFileError(
                    f"{directory}: the seeded random mask of {key!r} could not be rebuilt "
                    "identically (different spadapt or torch version?)"
                )
            stored.positions = expected[key].positions
    for wrapper, module in model.adapter_modules(name):
        prefix = f"{wrapper.site_name}{KEY_SEPARATOR}"
        local = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        if hasattr(module, "score_targets"):
            module.import_(local, model._innermost(wrapper))
        else:
            module.import_(local)


def load_adapter(base_model: nn.Module, path: str | Path, adapter_name: str | None = None):
    """Load an adapter directory onto `base_model` (or an AdaptedModel); it becomes active."""
    from .model import AdaptedModel

    model = base_model if isinstance(base_model, AdaptedModel) else AdaptedModel(base_model)
    name = load_adapter_into(model, path, adapter_name)
    model.set_adapter(name)
    return model
