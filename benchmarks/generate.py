"""Decoder quality: the generative PoC's methods on prompt/response builtins, seeds × steps.

Every method of `spadapt poc --task generate` (the base as it is, full fine-tuning, PEFT LoRA
on all linear layers at the rank closest to sparse_delta's count of values, PEFT SHiRA at that
rank, spadapt sparse_delta and the sparse bottleneck adapter), trained exactly as the PoC trains
it (`poc.run_method`, its recipes from `poc.load_methods`) on the real SmolLM2-135M-Instruct, for
`--steps` steps of 8 rows, and scored on the dataset's evaluation rows: response loss,
perplexity, exact match and ROUGE-L of greedy answers, non-zeros and bytes on disk. The method
`sparse_delta_at_lora` (not run unless `--methods` names it) is sparse_delta at exactly LoRA's
count of values, for the comparison at equal non-zeros. One entry per dataset/method/seed in
`results/generate_quality.json`, with the machine it ran on, written after each run, so
`--resume` skips what is there. Times are recorded but are not the step benchmark: runs are
sequential, not interleaved, and may come from different machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

from spadapt import atomic
from spadapt.recipe import Recipe, load_recipe

from .common import RESULTS_DIR, machine, paired_difference

RESULTS = RESULTS_DIR / "generate_quality.json"
DATASETS = ("chatterbot_qa", "country_qa")
FIELDS = ("eval_loss", "perplexity", "exact_match", "rouge_l", "nonzero_params",
          "trainable_params", "adapter_bytes", "train_seconds", "step_seconds_median",
          "peak_memory_bytes", "learning_rate", "steps")
MATCHED = "sparse_delta_at_lora"  # sparse_delta at LoRA's count of values (equal non-zeros)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--methods", default=None,
                        help="comma-separated (default: the generative PoC's six); "
                             f"{MATCHED}: sparse_delta at LoRA's count of values")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                        help="forwards of training and evaluation, as `spadapt poc --precision`")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)


def main(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.poc import load_methods, run_method, subset_rows
    from spadapt.poc_options import PocOptions
    from spadapt.tasks import CausalLMTask
    from spadapt.tasks.answer_metrics import short_answers
    from spadapt.train.levers import resolve_precision

    logging.set_verbosity_error()
    precision, _ = resolve_precision(args.precision, "cpu")
    settings = {"model": "builtin:smollm2", "steps": args.steps, "batch_size": 8,
                "max_length": 128, "max_new_tokens": 32, "eval_rows": args.eval_rows,
                "precision": precision}
    results = {"runs": {}, "settings": settings}
    if args.resume and args.out.exists():
        results = json.loads(args.out.read_text())
        held = {"precision": "fp32", **results.get("settings", {})}  # older files: fp32
        if held != settings:
            raise SystemExit(f"{args.out} holds runs with other settings ({held}); resume it "
                             f"with those, or write to another --out")
    path = str(resolve_model("builtin:smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    methods = args.methods.split(",") if args.methods else None
    train = {"max_steps": args.steps, "epochs": 1000, "batch_size": 8, "eval_batch_size": 16,
             "max_length": 128, "early_stopping_patience": None, "checkpoint_every": 0,
             "precision": precision}
    for dataset in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            split = load_dataset(f"builtin:{dataset}", seed=0)  # one split; seeds vary training
            eval_rows = subset_rows(split.eval, args.eval_rows, 1)
            metric = "exact_match" if short_answers([e.response for e in eval_rows]) \
                else "rouge_l"
            task = CausalLMTask(tokenizer, max_length=128, max_new_tokens=32,
                                quality_metric=metric)
            base = task.load_base(path)
            named = [matched_delta_recipe(base) if m == MATCHED else m for m in methods] \
                if methods else None
            for recipe in load_methods("generate", named, base):
                key = f"{dataset}/{recipe.name}/{seed}"
                if key in results["runs"]:
                    continue
                options = PocOptions(out=Path("runs/bench_generate") / dataset / str(seed),
                                     data=f"builtin:{dataset}", seed=seed, progress=False)
                started = time.perf_counter()
                measured = run_method(recipe, task, split.train, eval_rows, options, path, train)
                results["runs"][key] = {"metric": metric, "description": recipe.description,
                                        **{k: measured.get(k) for k in FIELDS},
                                        "wall_seconds": time.perf_counter() - started,
                                        "machine": machine()}
                print(key, {k: results["runs"][key][k] for k in
                            ("eval_loss", "exact_match", "rouge_l", "nonzero_params")},
                      flush=True)
                atomic.write_file(args.out, json.dumps(results, indent=1).encode())
    return results


def matched_delta_recipe(base) -> Recipe:
    """The builtin sparse_delta recipe at exactly as many values as the generative PoC's LoRA
    trains on `base` (r·(in+out) on every linear layer sparse_delta adapts): the builtin keeps 1%
    of those weights, more than LoRA at the rank closest to that count."""
    from spadapt.poc import load_methods

    from .competitors import linear_target_layers

    (lora,) = load_methods("generate", ["lora"], base)
    layers = linear_target_layers(base)
    values = lora.lora["r"] * sum(m.in_features + m.out_features for m in layers)
    recipe = load_recipe("sparse_delta")
    return dataclasses.replace(
        recipe, name=MATCHED, adapter={**recipe.adapter,
                                       "density": values / sum(m.weight.numel() for m in layers)},
        description=f"Sparse delta at LoRA's count of values ({values:,}, magnitude)")


def summary(results: dict) -> list[dict]:
    """Per dataset and method: means over seeds, and the paired differences of eval loss
    against full fine-tuning and LoRA (`paired_difference`: mean, standard error, seeds)."""
    runs = results["runs"]
    rows = []
    for dataset in dict.fromkeys(k.split("/")[0] for k in runs):
        methods = dict.fromkeys(k.split("/")[1] for k in runs if k.startswith(dataset + "/"))
        for method in methods:
            seeds = sorted(k.split("/")[2] for k in runs if k.startswith(f"{dataset}/{method}/"))
            mine = [runs[f"{dataset}/{method}/{s}"] for s in seeds]
            row = {"dataset": dataset, "method": method, "seeds": len(seeds),
                   "metric": mine[0]["metric"],
                   **{k: statistics.fmean(r[k] for r in mine)
                      for k in ("eval_loss", "perplexity", "exact_match", "rouge_l",
                                "nonzero_params", "adapter_bytes")}}
            for other in ("full", "lora"):
                difference = paired_difference(runs, dataset, method, other, "eval_loss")
                if difference is not None and other != method:
                    row[f"loss_vs_{other}"] = difference
            rows.append(row)
    return rows
