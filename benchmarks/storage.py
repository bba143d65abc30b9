"""Bytes on disk per method at equal trained values, and spadapt's distance to the bound.

Every method is built on the real MiniLM, its trainable values set to random non-zeros (so no
codec can profit from zeros a real adapter would not have), and saved the way its library
saves it: spadapt's adapter directory, PEFT's `save_pretrained` folder (safetensors). Reported
per method: file bytes (the weights file, and the whole directory), trained values, bytes per
trained value; for spadapt the information bound of its manifest (values at 4 bytes + log2
C(n, k) bits of positions per tensor) and the file's ratio to it; and for the sparse methods the
file against PEFT SHiRA's at the same number of trained values (SHiRA's bytes per value × k).

    python -m benchmarks storage
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from spadapt import AdaptedModel
from spadapt.poc import directory_bytes
from spadapt.storage import MANIFEST_FILE, WEIGHTS_FILE, information_bound_bytes

from .common import load_base, perturb_trainable, write_result
from .competitors import make_trainee

SPADAPT = ("adapter", "sparse", "large_sparse", "sparse_delta")
PEFT = ("lora", "shira", "supertuning")


def measure(name: str, base, calibration: list[dict], root: Path) -> dict:
    trainee = make_trainee(name, base.model, calibration)
    model = trainee.model
    perturb_trainable(model, seed=1)
    target = root / name
    if isinstance(model, AdaptedModel):
        path = model.save_adapter(target, base_model="builtin:minilm")
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        weights = (path / WEIGHTS_FILE).stat().st_size
        values = manifest["nnz"]
        bound = information_bound_bytes(manifest, value_bytes=4)
        entry = {"library": "spadapt", "weights_file_bytes": weights,
                 "directory_bytes": directory_bytes(path), "trained_values": values,
                 "information_bound_bytes": bound, "ratio_to_bound": weights / bound}
    else:
        model.save_pretrained(target, safe_serialization=True)
        weights = (target / "adapter_model.safetensors").stat().st_size
        values = trainee.trainable_parameters()
        entry = {"library": "peft", "weights_file_bytes": weights,
                 "directory_bytes": directory_bytes(target), "trained_values": values}
    entry["bytes_per_value"] = weights / values
    return entry


def run() -> dict:
    base = load_base(rows=256)
    calibration = [base.batch(i) for i in range(2)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SPADAPT + PEFT:
            results[name] = measure(name, base, calibration, Path(tmp))
    shira = results["shira"]["bytes_per_value"]
    for entry in results.values():
        entry["ratio_to_shira_at_equal_values"] = \
            entry["weights_file_bytes"] / (shira * entry["trained_values"])
    payload = {"value_dtype": "float32", "methods": results,
               "note": "trained values include the 2-label head (770 values) in every file"}
    write_result("storage", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def main(args: argparse.Namespace) -> dict:
    return run()
