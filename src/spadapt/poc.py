"""The PoC pipeline: for each method, train → evaluate → measure → `results.json` → report.

Every method sees the same data, the same base model and the same seed. Methods are recipes
(`spadapt.recipe`): "full" fine-tuning, "lora" and "shira" through PEFT, spadapt adapters, and
"base" (nothing trained). A budget ("quick" or "standard") fixes how much data and how many
steps each method gets, and quick its precision: bf16 autocast where the hardware computes
bf16 natively (`--precision auto`), recorded in results.json and the report. Results are
written after each method (atomically), so a long run shows its progress and a crash keeps
what was measured; a method that fails is recorded with its error and the others go on.

Two tasks: classify (labelled text; default base MiniLM) and generate (prompt/response pairs;
default base SmolLM2). A generative run scores greedy answers by exact match or ROUGE-L (the
run's `metric`, which `accuracy` repeats), starts from the untouched base as its "before" row,
and keeps every method's answers to 5 fixed evaluation prompts for the report.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from . import __version__, atomic
from .errors import SpadaptError
from .method_runs import (  # noqa: F401 (BUDGETS, build_model, ...: spadapt.poc's API too)
    BUDGETS,
    GENERATE_BUDGETS,
    budget_rule,
    build_model,
    calibration_batches,
    count_parameters,
    load_seeded_base,
    subset_rows,
    with_precision,
)
from .peft_methods import shira_rank
from .poc_options import DEFAULT_METHODS, DEFAULT_MODELS, GENERATE_METHODS, TASKS, PocOptions
from .recipe import Recipe, load_recipe
from .spread import kept_spread
from .tasks import CausalLMTask, ClassificationTask
from .tasks.answer_metrics import short_answers
from .tasks.causal_lm import QUALITY_METRICS
from .tasks.common import device_of
from .train.levers import PRECISION_SETTINGS, autocast

ANSWER_SAMPLES = 5  # evaluation prompts whose answers the report shows side by side
DATA_TASKS = {"classify": "classification", "generate": "causal_lm"}  # --task → the data's


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
    target = directory / {"lora": "lora", "shira": "shira"}.get(recipe.kind, "model")
    model.save_pretrained(target, safe_serialization=True)
    return target


def _task_metrics(final: dict, task) -> dict:
    """What a method's results carry of its final evaluation besides accuracy and loss."""
    if isinstance(task, CausalLMTask):
        return {"task": "generate",
                **{k: final[k] for k in ("perplexity", "exact_match", "rouge_l")}}
    return {"confusion_matrix": final.get("confusion_matrix")}


def _answers(task, model, samples: list, precision: str) -> dict:
    """The answers of a generative method to the report's fixed sample prompts, under the
    run's `precision` as its evaluation."""
    if not samples or not isinstance(task, CausalLMTask):
        return {}
    with autocast(precision, device_of(model)):
        return {"answers": task.generate(model, [e.prompt for e in samples])}


def run_method(recipe: Recipe, task, split_train: list, split_eval: list, options: PocOptions,
               model_path: str, train_overrides: dict, samples: list | None = None) -> dict:
    """Train and evaluate one method; its entry of results.json ("base" only evaluates)."""
    from .train import train

    # wall_seconds: the method's whole time, loading the base and a scorer's calibration
    # passes (SNIP's forwards and backwards) included
    started = time.perf_counter()
    directory = options.out / recipe.name
    directory.mkdir(parents=True, exist_ok=True)
    config = recipe.train_config(**train_overrides, seed=options.seed, progress=options.progress)
    base = load_seeded_base(task, model_path, options.seed)
    # a scorer's batches are the run's training batches (a decoder's are 8 rows, not 32)
    calibration = calibration_batches(recipe, task, split_train, config.batch_size)
    model = build_model(recipe, base, task.labels, calibration, options.seed)
    if recipe.kind == "base":
        with autocast(config.precision, device_of(model)):
            final = task.evaluate(model, split_eval, config.eval_batch_size)
        return {"name": recipe.name, "description": recipe.description, "kind": recipe.kind,
                "trained": False, "accuracy": final["accuracy"], "macro_f1": final["macro_f1"],
                "eval_loss": final["loss"], **count_parameters(recipe, model),
                "adapter_bytes": 0, "train_seconds": 0.0, "steps": 0, "history": [],
                "wall_seconds": time.perf_counter() - started, **_task_metrics(final, task),
                **_answers(task, model, samples or [], config.precision)}
    # what the optimizer holds at the start: a lottery schedule's dense phase holds more than
    # the adapter keeps, and that is what its training cost
    trained_at_start = count_parameters(recipe, model)["trainable_params"]
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
        "history": result.history, **_task_metrics(final, task),
        **({"spread": spread} if spread is not None else {}),
        **_answers(task, model, samples or [], config.precision),
    }


def run_search(options: PocOptions) -> tuple[dict, Recipe | None]:
    """`spadapt tune` in OUT/tune with the PoC's data, base, budget and seed: what it found
    (for results.json's "search") and the recipe of its best trial (None if none completed)."""
    from .tune import TuneOptions
    from .tune.study import BEST_FILE, run_tune

    directory = options.out / "tune"
    found = run_tune(TuneOptions(
        out=directory, data=options.data, eval_data=options.eval_data,
        text_column=options.text_column, label_column=options.label_column,
        prompt_column=options.prompt_column, response_column=options.response_column,
        model=options.model,
        budget=options.budget, trials=options.tune_trials,
        max_nonzero=options.tune_max_nonzero, precision=options.precision, seed=options.seed,
        resume=options.resume, progress=options.progress))
    best = found.pop("best")
    search = {**found, "directory": "tune", "best": best}
    if best is None:
        return search, None
    return search, load_recipe(directory / BEST_FILE)


def _check_options(options: PocOptions) -> None:
    if options.budget not in BUDGETS:
        raise PocError(f"--budget must be one of {list(BUDGETS)}, got {options.budget!r}")
    if options.task is not None and options.task not in TASKS:
        raise PocError(f"--task must be one of {list(TASKS)}, got {options.task!r}")
    if options.precision is not None and options.precision not in PRECISION_SETTINGS:
        raise PocError(f"--precision must be one of {list(PRECISION_SETTINGS)}, got "
                       f"{options.precision!r}")
    if options.metric is not None and options.metric not in QUALITY_METRICS:
        raise PocError(f"--metric must be one of {list(QUALITY_METRICS)}, got "
                       f"{options.metric!r}")


def load_methods(task_name: str, methods: list | None, base) -> list[Recipe]:
    """The recipes a run compares: `methods` (names or Recipes), else the task's defaults.
    To generate, the builtin `lora` gets the rank at which it trains about as many values as
    SHiRA and sparse_delta (1% of the linear weights sparse_delta adapts), on every linear
    layer; a recipe file or Recipe is used as it is."""
    if methods is None:
        methods = GENERATE_METHODS if task_name == "generate" else DEFAULT_METHODS
    recipes = [m if isinstance(m, Recipe) else load_recipe(m) for m in methods]
    if task_name != "generate":
        return recipes
    density = load_recipe("sparse_delta").adapter_config().density
    for i, (method, recipe) in enumerate(zip(methods, recipes, strict=True)):
        if method == "lora":
            rank = shira_rank(base, density)
            recipes[i] = dataclasses.replace(
                recipe, lora={**recipe.lora, "r": rank, "lora_alpha": 2 * rank,
                              "target_modules": "all-linear"},
                description=f"LoRA r={rank} (PEFT) on all linear layers")
    return recipes


def _quality_metric(options: PocOptions, references: list[str]) -> tuple[str, str]:
    """(metric, why): --metric, else exact match for short reference answers, else ROUGE-L."""
    if options.metric is not None:
        return options.metric, "option"
    if short_answers(references):
        return "exact_match", "short_answers"
    return "rouge_l", "long_answers"


def run_poc(options: PocOptions) -> dict:
    """Run every method of `options` and write results.json and the report; returns results."""
    from transformers import AutoTokenizer

    from .assets import resolve_model
    from .data import load_dataset

    started = time.perf_counter()
    _check_options(options)
    split = load_dataset(options.data, options.eval_data, text_column=options.text_column,
                         label_column=options.label_column, prompt_column=options.prompt_column,
                         response_column=options.response_column,
                         task=DATA_TASKS.get(options.task), skip_bad_rows=options.skip_bad_rows,
                         seed=options.seed)
    task_name = "generate" if split.task == "causal_lm" else "classify"
    options = dataclasses.replace(options, model=options.model or DEFAULT_MODELS[task_name])
    budget = (GENERATE_BUDGETS if task_name == "generate" else BUDGETS)[options.budget]
    budget, precision = with_precision(budget, options.precision)
    train_rows = subset_rows(split.train, budget["train_rows"], options.seed)
    eval_rows = subset_rows(split.eval, budget["eval_rows"], options.seed + 1)
    model_path = str(resolve_model(options.model))
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    loader = (CausalLMTask(tokenizer) if task_name == "generate"
              else ClassificationTask(tokenizer, list(split.labels)))
    base = loader.load_base(model_path)
    base_parameters = sum(p.numel() for p in base.parameters())
    recipes = load_methods(task_name, options.methods, base)
    del base
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise PocError(f"--methods lists a method twice: {names}")
    max_length = budget["train"].get("max_length", recipes[0].train_config().max_length)
    extra: dict = {}
    if task_name == "generate":
        metric, why = _quality_metric(options, [e.response for e in eval_rows])
        task = CausalLMTask(tokenizer, max_length=max_length,
                            max_new_tokens=budget["max_new_tokens"],
                            chat_template=options.chat_template, quality_metric=metric)
        samples = eval_rows[:ANSWER_SAMPLES]
        extra = {"metric": metric, "metric_reason": why,
                 "samples": [{"prompt": e.prompt, "reference": e.response} for e in samples]}
    else:
        task = ClassificationTask(tokenizer, list(split.labels), max_length)
        samples = []
    options.out.mkdir(parents=True, exist_ok=True)
    results_path = options.out / "results.json"
    previous = {}
    if options.resume and results_path.exists():
        previous = {m["name"]: m for m in json.loads(results_path.read_text())["methods"]
                    if "error" not in m}
    dataset = {"name": split.name, "train_rows": len(train_rows),
               "eval_rows": len(eval_rows), "labels": list(split.labels),
               "rejected_rows": len(split.rejected),
               "rejected": [vars(r) for r in split.rejected[:100]]}
    if task_name == "generate":
        dataset.update(max_length=max_length,
                       truncated_prompts=task.truncated_prompts(train_rows + eval_rows))
    results = {
        "dataset": dataset,
        "base_model": {"name": options.model, "parameters": base_parameters},
        "task": "generate" if task_name == "generate" else "classification",
        "budget": options.budget,
        "budget_rule": budget_rule(budget["train"], len(train_rows)),
        "seed": options.seed, **precision, **extra,
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
                                  budget["train"], samples)
        except (SpadaptError, RuntimeError, ValueError, torch.OutOfMemoryError) as error:
            measured = {"name": recipe.name, "description": recipe.description,
                        "error": f"{type(error).__name__}: {error}"}
        results["methods"].append(measured)
        _write_json(results_path, results)
    _write_json(results_path, results)
    from .report import write_report

    write_report(options.out, lang=options.lang)
    # this invocation's wall time, loading and the report included (a resumed run's covers
    # only what it ran)
    results["run_seconds"] = time.perf_counter() - started
    _write_json(results_path, results)
    return results
