"""The first-milestone demo: a sparse bottleneck adapter on MiniLM, trained on Rotten Tomatoes.

`run_demo` does the whole round trip on the CPU in a few minutes: load the builtin MiniLM and
its tokenizer (offline), take fixed-seed stratified subsets of the builtin Rotten Tomatoes
split, attach a SparseAdapter (bottleneck, Pfeiffer placement, SNIP masks chosen once at init,
He et al., Findings of EMNLP 2022) with a new 2-label head, train it with AdamW, save the
adapter, reload it onto a fresh MiniLM and check the reloaded model predicts exactly the same,
then write `summary.json`. The loop here is deliberately minimal; the full training loop on
Accelerate (checkpoints, resume, cost meters) belongs in `spadapt.train` and `spadapt.poc`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from .assets import resolve_model
from .config import AdapterConfig
from .data.builtin import Example, load_rotten_tomatoes
from .errors import SpadaptError
from .masks import keep_pruned_at_zero
from .model import AdaptedModel, attach
from .storage import load_adapter

MODEL_NAME = "builtin:minilm"
DATASET_NAME = "builtin:rotten_tomatoes"
# 1e-3 was measured to learn only the label prior in 60 steps (accuracy = share of "fresh",
# 0.578, every row predicted "fresh"); 1e-2 reaches ~0.76 in the same 60 steps.
LEARNING_RATE = 1e-2
WEIGHT_DECAY = 0.01
WARMUP_FRACTION = 0.1
CALIBRATION_BATCHES = 4
EVAL_BATCH_SIZE = 128
SUMMARY_FILE = "summary.json"
ADAPTER_SUBDIR = "adapter"


class DemoError(SpadaptError):
    """A demo argument that cannot work (the message names it); the CLI exits with code 2."""


# Data -------------------------------------------------------------------------------------------
def stratified_subset(examples: list[Example], rows: int, seed: int) -> list[Example]:
    """`rows` examples with the label proportions of `examples`, chosen and shuffled by `seed`.

    Each label gets floor(rows * share); the rows left over go to the labels with the largest
    remainders, so the subset has exactly `rows` examples.
    """
    labels = np.array([example.label for example in examples])
    counts = np.bincount(labels)
    exact = rows * counts / len(examples)
    quota = np.floor(exact).astype(int)
    for label in np.argsort(quota - exact)[: rows - quota.sum()]:
        quota[label] += 1
    rng = np.random.default_rng(seed)
    chosen = [index for label, take in enumerate(quota)
              for index in rng.permutation(np.flatnonzero(labels == label))[:take]]
    return [examples[i] for i in rng.permutation(chosen)]


def _check_sizes(train_rows: int, eval_rows: int, steps: int, batch_size: int,
                 max_length: int) -> None:
    for name, value in [("train_rows", train_rows), ("eval_rows", eval_rows), ("steps", steps),
                        ("batch_size", batch_size), ("max_length", max_length)]:
        if value < 1:
            raise DemoError(f"{name} must be >= 1, got {value}")


def _load_data(train_rows: int, eval_rows: int, seed: int
               ) -> tuple[list[Example], list[Example], list[str]]:
    train, evaluation, labels = load_rotten_tomatoes(seed)
    for name, wanted, available in [("train_rows", train_rows, len(train)),
                                    ("eval_rows", eval_rows, len(evaluation))]:
        if wanted > available:
            split = name.removesuffix("_rows")
            raise DemoError(f"{name}={wanted} is more than the {available} rows of "
                            f"{DATASET_NAME}'s {split} split")
    return (stratified_subset(train, train_rows, seed),
            stratified_subset(evaluation, eval_rows, seed), labels)


def _encode(tokenizer, examples: list[Example], max_length: int) -> dict[str, torch.Tensor]:
    """A batch of model inputs with labels: input_ids/attention_mask (rows, ≤max_length)."""
    batch = tokenizer([e.text for e in examples], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")
    batch = dict(batch)
    batch["labels"] = torch.tensor([e.label for e in examples])
    return batch


def _training_batches(examples: list[Example], batch_size: int, seed: int
                      ) -> Iterator[list[Example]]:
    """Endless batches: each epoch a fresh seeded permutation; the last short batch is dropped
    unless the data is smaller than one batch."""
    rng = np.random.default_rng(seed)
    size = min(batch_size, len(examples))
    while True:
        order = rng.permutation(len(examples))
        for start in range(0, len(order) - size + 1, size):
            yield [examples[i] for i in order[start : start + size]]


# Model ------------------------------------------------------------------------------------------
def _load_base(model_dir: Path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, local_files_only=True
    )


def _linear_warmup_decay(total_steps: int, warmup_fraction: float):
    """LR factor for 0-based step s: (s+1)/W during warm-up, then linear down to 1/(T-W)."""
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return (total_steps - step) / max(1, total_steps - warmup)

    return factor


@torch.no_grad()
def predict(model: AdaptedModel, tokenizer, examples: list[Example], max_length: int,
            progress: Progress, description: str) -> list[int]:
    """Predicted label ids of `examples`, in eval mode, `EVAL_BATCH_SIZE` rows at a time."""
    model.eval()
    task = progress.add_task(description, total=len(examples), loss="")
    predictions: list[int] = []
    for start in range(0, len(examples), EVAL_BATCH_SIZE):
        chunk = examples[start : start + EVAL_BATCH_SIZE]
        batch = _encode(tokenizer, chunk, max_length)
        batch.pop("labels")
        predictions += model(**batch).logits.argmax(-1).tolist()
        progress.advance(task, len(chunk))
    return predictions


def accuracy(predictions: list[int], examples: list[Example]) -> float:
    return sum(p == e.label for p, e in zip(predictions, examples, strict=True)) / len(examples)


def majority_label(examples: list[Example]) -> int:
    return int(np.bincount([e.label for e in examples]).argmax())


def train(model: AdaptedModel, tokenizer, examples: list[Example], steps: int, batch_size: int,
          max_length: int, learning_rate: float, seed: int, progress: Progress
          ) -> dict[str, Any]:
    """`steps` AdamW steps with a linear warm-up/decay LR; returns timings and the last loss."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _linear_warmup_decay(steps, WARMUP_FRACTION))
    keep_pruned_at_zero(model, optimizer)
    batches = _training_batches(examples, batch_size, seed)
    task = progress.add_task("train", total=steps, loss="")
    step_seconds, losses = [], []
    model.train()
    started = time.perf_counter()
    for step in range(1, steps + 1):
        batch = _encode(tokenizer, next(batches), max_length)
        step_start = time.perf_counter()
        loss = model(**batch).loss
        regularization = model.regularization_loss()
        if regularization is not None:
            loss = loss + regularization
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        model.step_schedule(step, steps)
        step_seconds.append(time.perf_counter() - step_start)
        losses.append(loss.item())
        progress.update(task, advance=1, loss=f"loss {losses[-1]:.4f}")
    model.finalize_masks()
    model.eval()
    return {"train_seconds": time.perf_counter() - started,
            "step_seconds_median": statistics.median(step_seconds),
            "loss_first": losses[0], "loss_last": losses[-1]}


# Output -----------------------------------------------------------------------------------------
def write_json_atomic(path: Path, data: dict) -> None:
    """Write `data` as JSON to `path` via a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _file_bytes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}


def _progress_bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeElapsedColumn(),
                    console=Console(stderr=True), refresh_per_second=4, disable=not enabled)


def demo_config(density: float, seed: int, labels: list[str]) -> AdapterConfig:
    return AdapterConfig(method="bottleneck", placement="pfeiffer", bottleneck=64,
                         density=density, scorer="snip", schedule="init", seed=seed,
                         labels=labels)


# The demo ---------------------------------------------------------------------------------------
def run_demo(out_dir: Path, train_rows: int = 1024, eval_rows: int = 1000, steps: int = 60,
             batch_size: int = 32, max_length: int = 64, density: float = 0.2, seed: int = 0,
             progress: bool = True, learning_rate: float = LEARNING_RATE) -> dict:
    """Train, save, reload and measure a sparse adapter on MiniLM; returns the summary.

    Writes `out_dir/adapter/` (the adapter directory) and `out_dir/summary.json` (the returned
    dict). Raises DemoError or ConfigError for arguments that cannot work, and RuntimeError if
    the reloaded adapter does not predict exactly like the trained one.
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    out_dir = Path(out_dir)
    _check_sizes(train_rows, eval_rows, steps, batch_size, max_length)
    if not learning_rate > 0:
        raise DemoError(f"learning_rate must be > 0, got {learning_rate}")
    demo_config(density, seed, [])  # validate density before the slow loading
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # no "LOAD REPORT" about the new, unloaded classifier
    hf_logging.disable_progress_bar()  # nor a "Loading weights" bar per load
    try:
        train_set, eval_set, labels = _load_data(train_rows, eval_rows, seed)
        model_dir = resolve_model(MODEL_NAME)
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        torch.manual_seed(seed)  # the new classifier's init and dropout
        base = _load_base(model_dir)
        base_parameters = sum(p.numel() for p in base.parameters())
        config = demo_config(density, seed, labels)
        calibration = [_encode(tokenizer, train_set[i : i + batch_size], max_length)
                       for i in range(0, CALIBRATION_BATCHES * batch_size, batch_size)
                       if i < len(train_set)]
        model = attach(base, config, calibration=calibration)
        with _progress_bar(progress) as bar:
            before = predict(model, tokenizer, eval_set, max_length, bar, "evaluate (before)")
            timings = train(model, tokenizer, train_set, steps, batch_size, max_length,
                            learning_rate, seed, bar)
            after = predict(model, tokenizer, eval_set, max_length, bar, "evaluate (after)")
            adapter_dir = model.save_adapter(out_dir / ADAPTER_SUBDIR)
            reloaded = load_adapter(_load_base(model_dir), adapter_dir)
            again = predict(reloaded, tokenizer, eval_set, max_length, bar, "evaluate (reloaded)")
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if again != after:
        differing = sum(a != b for a, b in zip(again, after, strict=True))
        raise RuntimeError(f"the adapter reloaded from {adapter_dir} predicts {differing} of "
                           f"{len(after)} eval rows differently from the trained model")
    summary = {
        "base_model": {"name": MODEL_NAME, "path": str(model_dir), "parameters": base_parameters},
        "dataset": {"name": DATASET_NAME, "train_rows": len(train_set),
                    "eval_rows": len(eval_set), "labels": labels},
        "config": config.to_dict(),
        "training": {"steps": steps, "batch_size": batch_size, "max_length": max_length,
                     "learning_rate": learning_rate, "weight_decay": WEIGHT_DECAY,
                     "warmup_fraction": WARMUP_FRACTION, "seed": seed,
                     "calibration_batches": len(calibration),
                     "torch_threads": torch.get_num_threads(),
                     "loss_first": timings["loss_first"], "loss_last": timings["loss_last"]},
        "accuracy_majority": accuracy([majority_label(train_set)] * len(eval_set), eval_set),
        "accuracy_before": accuracy(before, eval_set),
        "accuracy_after": accuracy(after, eval_set),
        "accuracy_reloaded": accuracy(again, eval_set),
        "train_seconds": timings["train_seconds"],
        "step_seconds_median": timings["step_seconds_median"],
        "parameter_report": model.parameter_report(),
        "adapter_dir": str(adapter_dir),
        "adapter_files": _file_bytes(adapter_dir),
    }
    write_json_atomic(out_dir / SUMMARY_FILE, summary)
    return summary
