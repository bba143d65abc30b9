"""Inference: latency per batch, mixed-adapter batches, and hot-swapping adapters.

1. Latency of one eval-mode forward (32 × 64 tokens, no grad), interleaved, for the base
   model, unmerged spadapt adapters (the builtin recipes' sizes, and large-sparse also at the
   accuracy benchmark's matched budget, whose widened bottleneck is narrower), PEFT LoRA
   unmerged, and `sparse_delta` merged into the base weights; each as a ratio to the base,
   round by round.
2. Throughput of a batch whose rows go to 8 different adapters (`adapter_names`) against the
   same batch all for one adapter, on one model holding all 8; for sparse bottleneck adapters
   and for sparse_delta adapters.
3. Hot-swap: `set_adapter` to another resident adapter; loading an adapter directory from disk
   into the running model; and, for scale, loading the base model itself.

    python -m benchmarks inference [--rounds 7]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch

import spadapt

from .common import (
    BATCH_SIZE,
    SEQUENCE_LENGTH,
    interleaved,
    load_base,
    perturb_trainable,
    ratio_summary,
    resident_adapters,
    write_result,
)
from .competitors import label_names, make_trainee

ADAPTERS = 8  # adapters resident on one model for the mixed-batch and hot-swap figures
MATCHED_LARGE_SPARSE = "large_sparse_matched"  # latency entry: large-sparse at 0.5% of the base


def matched_large_sparse(base, calibration: list[dict]) -> tuple[torch.nn.Module, str]:
    """(model, description) of large-sparse as the accuracy benchmark sizes it for its matched
    budget: latency grows with the widened bottleneck, so the recipe's r=64→320 is its worst
    case on MiniLM (320 of 384 hidden units) and this the size the accuracy tables report."""
    from .accuracy import entries

    entry = next(e for e in entries(base.model) if e.name == "large_sparse")
    torch.manual_seed(0)
    model = entry.build(copy.deepcopy(base.model), label_names(base.model), calibration, 0)
    return model, f"{entry.description}, at the accuracy benchmark's matched budget"


def latency(base, rounds: int) -> dict:
    inputs = {k: v for k, v in base.batch(0).items() if k != "labels"}
    calibration = [base.batch(i) for i in range(2)]
    models = {"base": copy.deepcopy(base.model)}
    for name in ("adapter", "sparse", "large_sparse", "lora", "sparse_delta"):
        model = make_trainee(name, base.model, calibration).model
        perturb_trainable(model, seed=1)
        models[name] = model
    models[MATCHED_LARGE_SPARSE], description = matched_large_sparse(base, calibration)
    perturb_trainable(models[MATCHED_LARGE_SPARSE], seed=1)
    merged = copy.deepcopy(models["sparse_delta"])
    merged.merge_adapter()
    models["sparse_delta_merged"] = merged
    for model in models.values():
        model.eval()

    def forward(model):
        with torch.inference_mode():
            model(**inputs)

    series = interleaved({n: (lambda m=m: forward(m)) for n, m in models.items()},
                         rounds=rounds, warmup=1, repeats=3)
    results = {name: {"seconds": series[name].summary(),
                      "ratio_to_base": ratio_summary(series[name], series["base"])}
               for name in models}
    results[MATCHED_LARGE_SPARSE]["description"] = description
    return results


def _many_adapters(base, method: str, root: Path) -> tuple[spadapt.AdaptedModel, list[Path]]:
    """One model holding ADAPTERS perturbed adapters of `method`; also saved under `root`."""
    settings = {"bottleneck": dict(method="bottleneck", bottleneck=64, density=0.2),
                "sparse_delta": dict(method="sparse_delta", density=0.01)}[method]
    model = resident_adapters(base.model, settings, ADAPTERS, label_names(base.model))
    paths = [model.save_adapter(root / f"{method}-a{i}", adapter_name=f"a{i}",
                                base_model="builtin:minilm") for i in range(ADAPTERS)]
    return model, paths


def mixed_batches(base, rounds: int, root: Path) -> dict:
    inputs = {k: v for k, v in base.batch(0).items() if k != "labels"}
    rows = inputs["input_ids"].shape[0]
    results = {}
    for method in ("bottleneck", "sparse_delta"):
        model, _ = _many_adapters(base, method, root)
        single = ["a0"] * rows
        mixed = [f"a{i % ADAPTERS}" for i in range(rows)]

        def forward(names, model=model):
            with torch.inference_mode():
                model(**inputs, adapter_names=names)

        series = interleaved({"single": lambda names=single: forward(names),
                              "mixed": lambda names=mixed: forward(names)},
                             rounds=rounds, warmup=1, repeats=3)
        ratio = ratio_summary(series["single"], series["mixed"])  # time ratio = throughput ratio
        results[method] = {
            "rows_per_batch": rows, "adapters_in_mixed_batch": ADAPTERS,
            "single_rows_per_second": rows / series["single"].summary()["median"],
            "mixed_rows_per_second": rows / series["mixed"].summary()["median"],
            "mixed_over_single_throughput": ratio,
        }
    return results


def _median_seconds(call, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "repeats": repeats}


def hot_swap(base, root: Path, repeats: int) -> dict:
    model, paths = _many_adapters(base, "bottleneck", root)
    names = [f"a{i}" for i in range(ADAPTERS)]
    cycle = itertools.count()
    swap = _median_seconds(lambda: model.set_adapter(names[next(cycle) % ADAPTERS]),
                           repeats * 10)
    loads = itertools.count()

    def load_from_disk():
        name = f"cold{next(loads)}"
        model.load_adapter(paths[0], adapter_name=name)
        model.set_adapter(name)
        model.set_adapter("a0")
        model.delete_adapter(name)

    cold = _median_seconds(load_from_disk, repeats)
    model_load = _median_seconds(lambda: base.model.__class__.from_pretrained(
        base.path, num_labels=2, local_files_only=True), max(3, repeats // 3))
    return {"set_adapter_seconds": swap, "load_adapter_from_disk_seconds": cold,
            "load_base_model_seconds": model_load,
            "adapter": "sparse bottleneck r=64, density 0.2, 8 resident"}


def run(rounds: int, repeats: int) -> dict:
    base = load_base(rows=256)
    with tempfile.TemporaryDirectory() as tmp:
        payload = {"batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH, "rounds": rounds,
                   "latency": latency(base, rounds),
                   "mixed_batch": mixed_batches(base, rounds, Path(tmp)),
                   "hot_swap": hot_swap(base, Path(tmp) / "swap", repeats)}
    write_result("inference", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=15, help="timed calls for hot-swap")


def main(args: argparse.Namespace) -> dict:
    return run(args.rounds, args.repeats)
