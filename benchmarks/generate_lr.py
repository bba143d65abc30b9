"""Learning rates of the generative PoC's methods, judged on validation rows.

The rows come out of the training split of a prompt/response builtin (15%, whole prompts at a
time, `group_split` seed 0; at most 64 of them, `subset_rows` seed 1); the evaluation rows are
never read. Each method (its PoC recipe, `poc.load_methods`) trains at the quick generative
budget (`GENERATE_BUDGETS["quick"]`: 24 steps of 8 rows) at each learning rate of `--grid`,
and is scored by response loss and ROUGE-L on the validation rows. Results in
`results/generate_lr.json`, one entry per dataset/method/learning rate; `--resume` skips those.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from spadapt import atomic

from .common import RESULTS_DIR

RESULTS = RESULTS_DIR / "generate_lr.json"
GRID = {"sparse_delta": [1e-2, 1e-3, 1e-4], "lora": [2e-3, 5e-4], "full": [1e-4, 2e-5]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="chatterbot_qa")
    parser.add_argument("--grid", default=json.dumps(GRID), help="JSON: method -> rates")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)


def main(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.data.split import group_split
    from spadapt.method_runs import GENERATE_BUDGETS, subset_rows
    from spadapt.poc import load_methods, run_method
    from spadapt.poc_options import PocOptions
    from spadapt.tasks import CausalLMTask

    path = str(resolve_model("builtin:smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    split = load_dataset(f"builtin:{args.dataset}")
    train_idx, validation_idx = group_split([e.prompt for e in split.train], 0, 0.15)
    train = [split.train[i] for i in train_idx]
    validation = subset_rows([split.train[i] for i in validation_idx], 64, 1)
    budget = GENERATE_BUDGETS["quick"]
    task = CausalLMTask(tokenizer, max_length=128, max_new_tokens=32, quality_metric="rouge_l")
    recipes = {r.name: r for r in load_methods("generate", None, task.load_base(path))}
    results = json.loads(args.out.read_text()) if args.resume and args.out.exists() else {}
    for name, rates in json.loads(args.grid).items():
        for rate in rates:
            key = f"{args.dataset}/{name}/{rate}"
            if key in results:
                continue
            recipe = dataclasses.replace(recipes[name], train={**recipes[name].train,
                                                               "learning_rate": rate})
            options = PocOptions(out=Path("runs/bench_generate_lr") / args.dataset / name /
                                 str(rate), data=f"builtin:{args.dataset}", progress=False)
            started = time.perf_counter()
            measured = run_method(recipe, task, train, validation, options, path,
                                  budget["train"])
            results[key] = {k: measured[k] for k in ("eval_loss", "exact_match", "rouge_l",
                                                     "nonzero_params", "train_seconds")}
            print(key, results[key], f"{time.perf_counter() - started:.0f} s", flush=True)
            atomic.write_file(args.out, json.dumps(results, indent=1).encode())
    return results
