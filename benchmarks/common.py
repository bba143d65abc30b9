"""What every benchmark shares: the real base and batches, interleaved timing, result files.

Timing is interleaved: each round runs every competitor once (in a fresh shuffled order), so
slow drifts of a noisy machine hit all of them alike; a round's figure is the median of its
timed calls after warm-up. Reported: the median over rounds with min–max, and each ratio to a
reference computed round by round (the same round's two figures), then its median and min–max.
"""

from __future__ import annotations

import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from spadapt import atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BATCH_SIZE = 32  # examples per batch, for every competitor
SEQUENCE_LENGTH = 64  # tokens per example (padded/truncated to exactly this)


@dataclass
class Base:
    path: str  # local folder of the base model
    tokenizer: object  # its tokenizer
    model: torch.nn.Module  # AutoModelForSequenceClassification, 2 labels, never trained
    texts: list[str]  # Rotten Tomatoes training texts (first rows of the fixed split)
    labels: list[int]  # their labels

    def batch(self, index: int = 0, size: int = BATCH_SIZE) -> dict[str, torch.Tensor]:
        """Batch `index` of `size` real examples, exactly SEQUENCE_LENGTH tokens each."""
        rows = range(index * size, (index + 1) * size)
        texts = [self.texts[i % len(self.texts)] for i in rows]
        encoded = self.tokenizer(texts, padding="max_length", truncation=True,
                                 max_length=SEQUENCE_LENGTH, return_tensors="pt")
        batch = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                 if k in encoded}
        batch["labels"] = torch.tensor([self.labels[i % len(self.labels)] for i in rows])
        return batch


def load_base(rows: int = 2048) -> Base:
    """The real MiniLM (builtin:minilm) and Rotten Tomatoes texts (builtin:rotten_tomatoes)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model

    logging.set_verbosity_error()  # "newly initialized head" is expected; no loading bars
    logging.disable_progress_bar()
    from spadapt.data import load_dataset
    from spadapt.tasks import ClassificationTask

    path = str(resolve_model("builtin:minilm"))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    split = load_dataset("builtin:rotten_tomatoes", seed=0)
    task = ClassificationTask(tokenizer, list(split.labels), SEQUENCE_LENGTH)
    examples = split.train[:rows]
    return Base(path, tokenizer, task.load_base(path), [e.text for e in examples],
                [e.label for e in examples])


@dataclass
class Series:
    """Per-round figures of one competitor (seconds, or any other measure)."""

    rounds: list[float]

    def summary(self) -> dict[str, float]:
        return {"median": statistics.median(self.rounds), "min": min(self.rounds),
                "max": max(self.rounds), "rounds": len(self.rounds)}


def ratio_summary(numerator: Series, denominator: Series) -> dict[str, float]:
    """Round-by-round ratios numerator/denominator: median and min–max."""
    ratios = [a / b for a, b in zip(numerator.rounds, denominator.rounds, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def interleaved(calls: dict[str, Callable[[], object]], rounds: int, warmup: int,
                repeats: int, seed: int = 0) -> dict[str, Series]:
    """Time every call `rounds` times, interleaved; a round's figure is the median of
    `repeats` timed calls after `warmup` untimed ones."""
    order = list(calls)
    shuffler = random.Random(seed)
    series: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        shuffler.shuffle(order)
        for name in order:
            call = calls[name]
            for _ in range(warmup):
                call()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            series[name].append(statistics.median(times))
    return {name: Series(values) for name, values in series.items()}


def perturb_trainable(model: torch.nn.Module, seed: int, scale: float = 0.02) -> None:
    """Random non-zero values added to every trainable tensor (as if trained); entries a mask
    prunes stay zero."""
    from spadapt.masks.masked import MaskedWeight

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
        for module in model.modules():
            if isinstance(module, MaskedWeight) and module.mask is not None:
                module.weight.mul_(module.mask)


def resident_adapters(model: torch.nn.Module, settings: dict, count: int,
                      labels: list[str] | None = None):
    """A copy of `model` holding `count` adapters a0, a1, ... of `settings` (random support,
    seed i), each's values perturbed as if trained; a0 active, in eval mode."""
    import copy

    import spadapt

    adapted = spadapt.AdaptedModel(copy.deepcopy(model))
    for index in range(count):
        name = f"a{index}"
        adapted.add_adapter(name, spadapt.AdapterConfig(**settings, scorer="random",
                                                        seed=index, labels=labels))
        adapted.set_adapter(name)  # the only trainable one: the one perturbed
        perturb_trainable(adapted, seed=index)
    adapted.set_adapter("a0")
    return adapted.eval()


def machine() -> dict:
    """The machine and library versions a result was measured with."""
    import peft
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "date": time.strftime("%Y-%m-%d")}


def write_result(name: str, payload: dict, directory: Path = RESULTS_DIR) -> Path:
    """benchmarks/results/<name>.json (atomically), with the machine and the command line."""
    payload = {"name": name, "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
               "machine": machine(), **payload}
    path = directory / f"{name}.json"
    atomic.write_file(path, json.dumps(payload, indent=2).encode())
    return path


def paired_difference(runs: dict, dataset: str, name: str, other: str,
                      metric: str = "accuracy") -> tuple[float, float, int] | None:
    """(mean, paired standard error, seeds) of metric(name) − metric(other) over the seeds
    both ran on `dataset`, `runs` keyed "dataset/method/seed" (standard error nan for one
    seed); None if they share none."""
    seeds = sorted({key.rsplit("/", 1)[1] for key in runs
                    if key.startswith(f"{dataset}/{name}/")}
                   & {key.rsplit("/", 1)[1] for key in runs
                      if key.startswith(f"{dataset}/{other}/")})
    if not seeds:
        return None
    differences = [runs[f"{dataset}/{name}/{seed}"][metric]
                   - runs[f"{dataset}/{other}/{seed}"][metric] for seed in seeds]
    error = (statistics.stdev(differences) / math.sqrt(len(differences))
             if len(differences) > 1 else math.nan)
    return statistics.mean(differences), error, len(differences)
