"""The PoC pipeline: for each method, train → evaluate → measure → `results.json` → report.

Every method sees the same data, the same base model and the same seed. Methods are recipes
(`spadapt.recipe`): "full" fine-tuning, "lora" through PEFT, and spadapt adapters. A budget
("quick" or "standard") fixes how much data and how many steps each method gets. Results are
written after each method (atomically), so a long run shows its progress and a crash keeps what
was measured; a method that fails is recorded with its error and the others go on.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from . import __version__, atomic
from .errors import SpadaptError
from .method_runs import (  # noqa: F401 (BUDGETS, build_model, ...: spadapt.poc's API too)
    BUDGETS,
    budget_rule,
    build_model,
    calibration_batches,
    count_parameters,
    load_seeded_base,
    subset_rows,
)
from .poc_options import PocOptions
from .recipe import Recipe, load_recipe
from .spread import kept_spread


class PocError(SpadaptError):
    """A PoC option that cannot work."""


def _write_json(path: Path, data: dict) -> None:
    atomic.write_file(path, json.dumps(data, indent=2).encode())


def directory_bytes(path: Path) -> int:
    """Bytes of every file under `path`, subfolders included: what a saved method stores."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def machine_info() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


def save_method(recipe: Recipe, model, directory: Path, model_ref: str) -> Path:
    """Save what the method trained: an adapter directory, a PEFT folder or a whole model."""
    if recipe.kind == "spadapt":
        return model.save_adapter(directory / "adapter", base_model=model_ref)
    target = directory / ("lora" if recipe.kind == "lora" else "model")
    model.save_pretrained(target, safe_serialization=True)
    return target


def run_method(recipe: Recipe, task, split_train: list, split_eval: list, options: PocOptions,
               model_path: str, train_overrides: dict) -> dict:
    from .train import train

    directory = options.out / recipe.name
    directory.mkdir(parents=True, exist_ok=True)
    base = load_seeded_base(task, model_path, options.seed)
    calibration = calibration_batches(recipe, task, split_train)
    model = build_model(recipe, base, task.labels, calibration, options.seed)
    config = recipe.train_config(**train_overrides, seed=options.seed, progress=options.progress)
    # what the optimizer holds at the start: a lottery schedule's dense phase holds more than
    # the adapter keeps, and that is what its training cost
    trained_at_start = count_parameters(recipe, model)["trainable_params"]
    started = time.perf_counter()
    result = train(model, task, split_train, split_eval, config, out_dir=directory / "run",
                   resume=options.resume)
    saved = save_method(recipe, model, directory, options.model)
    final = result.final_metrics
    counts = count_parameters(recipe, model)
    counts["trainable_params"] = max(counts["trainable_params"], trained_at_start)
    spread = None
    if recipe.kind == "spadapt":
        spread = kept_spread({name: tensor.values.numel() for name, tensor in
                              model.export_adapter("default").items()}).to_dict()
    return {
        "name": recipe.name, "description": recipe.description, "kind": recipe.kind,
        "accuracy": final["accuracy"], "macro_f1": final["macro_f1"],
        "eval_loss": final["loss"], **counts,
        "adapter_bytes": directory_bytes(saved),
        "train_seconds": result.train_seconds,
        "step_seconds_median": result.step_seconds_median,
        "examples_per_second": result.examples_per_second,
        "peak_memory_bytes": result.peak_memory_bytes, "steps": result.steps,
        "wall_seconds": time.perf_counter() - started,
        "adapter_dir": str(saved.relative_to(options.out)),
        "learning_rate": config.learning_rate, "best_step": result.best_step,
        "history": result.history, "confusion_matrix": final.get("confusion_matrix"),
        **({"spread": spread} if spread is not None else {}),
        **{k: final[k] for k in ("perplexity", "exact_match") if k in final},
    }


def run_search(options: PocOptions) -> tuple[dict, Recipe | None]:
    """`spadapt tune` in OUT/tune with the PoC's data, base, budget and seed: what it found
    (for results.json's "search") and the recipe of its best trial (None if none completed)."""
    from .tune import TuneOptions
    from .tune.study import BEST_FILE, run_tune

    directory = options.out / "tune"
    found = run_tune(TuneOptions(
        out=directory, data=options.data, eval_data=options.eval_data,
        text_column=options.text_column, label_column=options.label_column, model=options.model,
        budget=options.budget, trials=options.tune_trials,
        max_nonzero=options.tune_max_nonzero, seed=options.seed, resume=options.resume,
        progress=options.progress))
    best = found.pop("best")
    search = {**found, "directory": "tune", "best": best}
    if best is None:
        return search, None
    return search, load_recipe(directory / BEST_FILE)


def run_poc(options: PocOptions) -> dict:
    """Run every method of `options` and write results.json and the report; returns results."""
    from transformers import AutoTokenizer

    from .assets import resolve_model
    from .data import load_dataset
    from .tasks import CausalLMTask, ClassificationTask

    if options.budget not in BUDGETS:
        raise PocError(f"--budget must be one of {list(BUDGETS)}, got {options.budget!r}")
    recipes = [m if isinstance(m, Recipe) else load_recipe(m) for m in options.methods]
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise PocError(f"--methods lists a method twice: {names}")
    split = load_dataset(options.data, options.eval_data, text_column=options.text_column,
                         label_column=options.label_column, skip_bad_rows=options.skip_bad_rows,
                         seed=options.seed)
    budget = BUDGETS[options.budget]
    train_rows = subset_rows(split.train, budget["train_rows"], options.seed)
    eval_rows = subset_rows(split.eval, budget["eval_rows"], options.seed + 1)
    model_path = str(resolve_model(options.model))
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    max_length = budget["train"].get("max_length", recipes[0].train_config().max_length)
    if split.task == "causal_lm":  # instruction tuning: prompt + response, room for both
        task = CausalLMTask(tokenizer, max_length=max(max_length, 128))
    else:
        task = ClassificationTask(tokenizer, list(split.labels), max_length)
    options.out.mkdir(parents=True, exist_ok=True)
    results_path = options.out / "results.json"
    previous = {}
    if options.resume and results_path.exists():
        previous = {m["name"]: m for m in json.loads(results_path.read_text())["methods"]
                    if "error" not in m}
    base_parameters = sum(p.numel() for p in task.load_base(model_path).parameters())
    results = {
        "dataset": {"name": split.name, "train_rows": len(train_rows),
                    "eval_rows": len(eval_rows), "labels": list(split.labels),
                    "rejected_rows": len(split.rejected),
                    "rejected": [vars(r) for r in split.rejected[:100]]},
        "base_model": {"name": options.model, "parameters": base_parameters},
        "task": split.task, "budget": options.budget,
        "budget_rule": budget_rule(budget["train"], len(train_rows)),
        "seed": options.seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "spadapt_version": __version__,
        "machine": machine_info(), "methods": [],
    }
    if options.tune:
        search, tuned = run_search(options)
        results["search"] = search
        if tuned is not None:
            recipes = [r for r in recipes if r.name != tuned.name] + [tuned]
    for recipe in recipes:
        if recipe.name in previous:
            results["methods"].append(previous[recipe.name])
            continue
        try:
            measured = run_method(recipe, task, train_rows, eval_rows, options, model_path,
                                  budget["train"])
        except (SpadaptError, RuntimeError, torch.OutOfMemoryError) as error:
            measured = {"name": recipe.name, "description": recipe.description,
                        "error": f"{type(error).__name__}: {error}"}
        results["methods"].append(measured)
        _write_json(results_path, results)
    _write_json(results_path, results)
    from .report import write_report

    write_report(options.out, lang=options.lang)
    return results
