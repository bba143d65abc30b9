"""The adapter directory: only kept values, positions near the information bound, checked on load.

```
adapter_config.json   {"format_version", "spadapt_version", "adapter_name", "base_model",
                       "task", "head_width", "config": AdapterConfig (labels included)}
adapter.safetensors   two tensors: "values" (every kept value, fp32/fp16/bf16, key order) and
                      "positions" (uint8: each sparse tensor's positions, encoded by
                      spadapt.codecs in its smallest form); the layout (key, shape, nnz,
                      encoding, position bytes) is in the safetensors metadata
manifest.json         sha256 + size of both files, the base-model fingerprint, per-tensor nnz
```

Position encodings per tensor: "dense" (all kept, no positions), "seeded" (a random mask that
`spadapt.masks` rebuilds from the adapter's seed; only its sha256 is stored, in the manifest),
or a codec from `spadapt.codecs` ("bitmask", "elias_fano", "empty", "full").

This module is the file format alone: tensors and facts in, bytes out, and back; it knows
nothing of `AdaptedModel` (which builds modules and loads what is read here into them).
Reading verifies everything (checksums, layout, positions) and returns plain values; writes
go to a temporary directory renamed into place. Safetensors only.

Format versions: 2 records the task ("classification", "causal_lm" or "adapter") and the
head's width; version 1 directories (no task) still load: labels mean classification, none a
causal-LM adapter, as version 1 readers took them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

from . import __version__, atomic
from .codecs import CodecError, decode_positions, encode_positions, information_bound_bits
from .config import AdapterConfig, ConfigError
from .errors import AdapterFileError
from .fingerprint import sha256_hex

FORMAT_VERSION = 2  # of the directory (adapter_config.json and manifest.json)
READABLE_FORMAT_VERSIONS = (1, 2)
WEIGHTS_FORMAT_VERSION = 1  # of adapter.safetensors (its metadata says "format_version")
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TASKS = ("classification", "causal_lm", "adapter")


@dataclass
class StoredTensor:
    """One tensor as storage sees it: kept values and where they go."""

    shape: tuple[int, ...]  # dense shape
    values: torch.Tensor  # 1-D kept values, in increasing flat-position order
    positions: torch.Tensor | None  # 1-D sorted int64 flat positions; None = dense (all kept)
    seeded: bool = False  # positions can be rebuilt from the adapter's seed (random scorer)
    positions_sha256: str | None = None  # read back: the stored digest of seeded positions


@dataclass(frozen=True)
class AdapterTask:
    """What an adapter's outputs are: the facts `serve`, `eval`, `predict` and the registry
    decide on."""

    task: str  # "classification" (a head over `labels`), "causal_lm" (text) or "adapter"
    labels: list[str] = field(default_factory=list)  # class names; [] unless classification
    head_width: int = 0  # outputs of the classification head; 0 unless classification

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise AdapterFileError(f"task {self.task!r} is not one of {list(TASKS)}")
        if self.task == "classification" and self.head_width != len(self.labels):
            raise AdapterFileError(f"a classification head of width {self.head_width} needs as "
                                   f"many labels, got {len(self.labels)}: {self.labels}")


def information_bound_bytes(manifest: dict, value_bytes: int) -> float:
    """The least bytes any file could hold a manifest's adapter in: every kept value at
    `value_bytes`, plus log2 C(size, nnz) bits for the positions of each sparse tensor."""
    total_bits = 0.0
    for entry in manifest["tensors"].values():
        total_bits += entry["nnz"] * value_bytes * 8
        if entry["encoding"] != "dense":
            total_bits += information_bound_bits(math.prod(entry["shape"]), entry["nnz"])
    return total_bits / 8


# Encoding ---------------------------------------------------------------------------------------
def value_dtype(config: AdapterConfig, tensors: dict[str, StoredTensor],
                save_dtype: str | None = None) -> torch.dtype:
    """The dtype values are stored in: `save_dtype`, else the config's, else the tensors' own."""
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
                entry["positions_sha256"] = positions_digest(stored.positions)
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
    metadata = {"format": "spadapt-adapter", "format_version": str(WEIGHTS_FORMAT_VERSION),
                "layout": json.dumps(layout, separators=(",", ":")), **(extra_metadata or {})}
    return out, metadata, entries


def positions_digest(positions: torch.Tensor) -> str:
    """sha256 of flat positions as int64 bytes (what "seeded" tensors store instead of them)."""
    return sha256_hex(positions.detach().cpu().numpy().astype(np.int64).tobytes())


def encoded_size(tensors: dict[str, StoredTensor], dtype: torch.dtype) -> int:
    """Exact size in bytes of the adapter.safetensors that `write_adapter_dir` would write."""
    encoded, metadata, _ = encode_adapter(tensors, dtype)
    return len(safetensors.torch.save(encoded, metadata=metadata))


def write_adapter_dir(path: str | Path, *, adapter_name: str, config: AdapterConfig,
                      tensors: dict[str, StoredTensor], task: AdapterTask, base: dict,
                      excluded_heads: list[str], save_dtype: str | None = None,
                      base_model: str | None = None) -> Path:
    """Write an adapter directory at `path` (atomically) and return it.

    base: the base model's fingerprint (spadapt.fingerprint) plus its "name_or_path";
    excluded_heads: the head modules the fingerprint leaves out (the adapter carries them);
    base_model: how to find the base again (e.g. "builtin:minilm" or a folder), recorded for
    `spadapt eval/predict`, never trusted over the fingerprint. `config.labels` is stored as
    `task.labels`. An existing directory is replaced only if it is an adapter directory or empty.
    """
    target = Path(path)
    if target.exists() and not (target / MANIFEST_FILE).is_file() and not _empty_dir(target):
        raise AdapterFileError(
            f"{target} exists and is not an adapter directory; refusing to overwrite it")
    dtype = value_dtype(config, tensors, save_dtype)
    encoded, metadata, entries = encode_adapter(tensors, dtype)
    weights = safetensors.torch.save(encoded, metadata=metadata)
    stored_config = dataclasses.replace(config, labels=list(task.labels))
    config_bytes = json.dumps({
        "format_version": FORMAT_VERSION,
        "spadapt_version": __version__,
        "adapter_name": adapter_name,
        "base_model": base_model,
        "task": task.task,
        "head_width": task.head_width,
        "config": stored_config.to_dict(),
    }, indent=2, sort_keys=True).encode()
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            CONFIG_FILE: {"sha256": sha256_hex(config_bytes), "bytes": len(config_bytes)},
            WEIGHTS_FILE: {"sha256": sha256_hex(weights), "bytes": len(weights)},
        },
        "base_model": base,
        "excluded_heads": list(excluded_heads),
        "value_dtype": str(encoded["values"].dtype).removeprefix("torch."),
        "nnz": sum(e["nnz"] for e in entries.values()),
        "tensors": entries,
    }
    with atomic.directory(target) as staging:
        atomic.write_file(staging / CONFIG_FILE, config_bytes)
        atomic.write_file(staging / WEIGHTS_FILE, weights)
        atomic.write_file(staging / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return target


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and next(path.iterdir(), None) is None


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
    if sha256_hex(data) != expected.get("sha256"):
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
    if metadata.get("format_version") != str(WEIGHTS_FORMAT_VERSION):
        raise AdapterFileError(
            f"{path} has format version {metadata.get('format_version')}; this spadapt reads "
            f"version {WEIGHTS_FORMAT_VERSION}"
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


@dataclass
class StoredAdapter:
    """An adapter directory as `read_adapter_dir` read and verified it."""

    config: AdapterConfig  # labels included
    manifest: dict  # manifest.json: checksums, base-model fingerprint, per-tensor entries
    tensors: dict[str, StoredTensor]  # storage key -> kept values and positions
    adapter_name: str  # the name it was saved under
    task: AdapterTask  # what its outputs are
    base_model: str | None  # how to find its base again (e.g. "builtin:minilm"), if recorded


def read_adapter_dir(path: str | Path) -> StoredAdapter:
    """Verify and parse an adapter directory (checksums, config, layout, positions).

    "seeded" tensors come back with positions None and their stored `positions_sha256`.
    """
    directory = Path(path)
    config, manifest, weights, saved = _read_verified(directory)
    tensors, _ = decode_adapter(weights, directory / WEIGHTS_FILE)
    for key, stored in tensors.items():
        if stored.seeded:
            stored.positions_sha256 = manifest.get("tensors", {}).get(key, {}).get(
                "positions_sha256")
    return StoredAdapter(config, manifest, tensors, saved.get("adapter_name", "default"),
                         _task_of(saved, config, directory / CONFIG_FILE),
                         saved.get("base_model"))


def read_adapter_task(path: str | Path) -> AdapterTask:
    """The task an adapter directory was saved for: its checksums and config verified, its
    tensors not decoded (cheaper than `read_adapter_dir`)."""
    directory = Path(path)
    config, _, _, saved = _read_verified(directory)
    return _task_of(saved, config, directory / CONFIG_FILE)


def _read_verified(directory: Path) -> tuple[AdapterConfig, dict, bytes, dict]:
    """(config, manifest, adapter.safetensors bytes, adapter_config.json), checksums verified."""
    if not directory.is_dir():
        raise AdapterFileError(f"{directory} is not a directory (expected a spadapt adapter dir)")
    manifest = _read_json(directory / MANIFEST_FILE)
    if manifest.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise AdapterFileError(
            f"{directory / MANIFEST_FILE} has format version {manifest.get('format_version')}; "
            f"this spadapt reads versions {list(READABLE_FORMAT_VERSIONS)}"
        )
    config_bytes = _read_checked(directory, CONFIG_FILE, manifest)
    weights = _read_checked(directory, WEIGHTS_FILE, manifest)
    try:
        saved = json.loads(config_bytes)
        config = AdapterConfig.from_dict(saved["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as error:
        message = f"{directory / CONFIG_FILE}: invalid adapter config ({error})"
        raise AdapterFileError(message) from None
    return config, manifest, weights, saved


def _task_of(saved: dict, config: AdapterConfig, path: Path) -> AdapterTask:
    if "task" not in saved:  # format version 1: labels were the only sign of a classifier
        if config.labels:
            return AdapterTask("classification", list(config.labels), len(config.labels))
        return AdapterTask("causal_lm")
    try:
        return AdapterTask(saved["task"], list(config.labels), int(saved.get("head_width", 0)))
    except (AdapterFileError, TypeError, ValueError) as error:
        raise AdapterFileError(f"{path}: {error}") from None


def match_stored_tensors(expected: dict[str, StoredTensor], stored: dict[str, StoredTensor],
                         where: Path) -> None:
    """Check that tensors read from `where` fit what a freshly built adapter `expected`
    (same keys and shapes; seeded masks rebuilt identically) and give "seeded" tensors the
    rebuilt positions. Raises AdapterFileError naming the file and tensor."""
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise AdapterFileError(
            f"{where} does not fit this model: missing tensors "
            f"{missing[:5]}, unexpected tensors {unexpected[:5]}"
        )
    for key, tensor in stored.items():
        if tuple(expected[key].shape) != tensor.shape:
            raise AdapterFileError(
                f"{where}: tensor {key!r} has shape {tensor.shape}, the model "
                f"needs {tuple(expected[key].shape)}"
            )
        if tensor.seeded:
            positions = expected[key].positions
            if (positions is None or positions.numel() != tensor.values.numel()
                    or positions_digest(positions) != tensor.positions_sha256):
                raise AdapterFileError(
                    f"{where}: the seeded random mask of {key!r} could not be rebuilt "
                    "identically (different spadapt or torch version?)"
                )
            tensor.positions = positions
