"""Learning rates of the generative PoC's methods, judged on validation rows.

The rows come out of the training split of a prompt/response builtin (15%, `group_split` seed
0, whole groups at a time: the country a `country_qa` question is about, as its evaluation split
keeps countries apart, else the prompt; at most `--validation-rows` of them, `subset_rows` seed
1); the evaluation rows are never read. Each method (its PoC recipe, `poc.load_methods`, or
`generate.MATCHED`: sparse_delta at LoRA's count of values; `NAME+VARIANT` is a spadapt recipe
with the adapter settings of `VARIANTS`) trains with the quick generative
budget's settings (`GENERATE_BUDGETS["quick"]`: batches of 8 rows) for `--steps` steps (24, the
quick budget, by default) at `--precision`, at each learning rate of `--grid`, and is scored by
response loss and ROUGE-L on the validation rows. Results in `results/generate_lr.json` (or
`--out`): the settings, and one run per dataset/method/learning rate; `--resume` skips those,
and refuses a file of other settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from spadapt import atomic

from .common import RESULTS_DIR, machine
from .generate import MATCHED, matched_delta_recipe

RESULTS = RESULTS_DIR / "generate_lr.json"
GRID = {"sparse_delta": [1e-2, 1e-3, 1e-4], "lora": [2e-3, 5e-4], "full": [1e-4, 2e-5]}
VARIANTS = {  # NAME+VARIANT in --grid: the spadapt recipe NAME with these adapter settings
    # SpIEL-style: every 20 steps each layer drops 30% (decaying) of its kept positions of
    # smallest |delta| and regrows as many where the frozen weight's gradient is largest
    "regrow": {"schedule": "regrow", "regrow_every": 20, "regrow_fraction": 0.3},
    # LT-SFT, as the builtin `lottery` recipe: dense first half, then each layer's movers
    "lottery": {"schedule": "lottery", "budget": "layer", "prune_end": 0.5},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="chatterbot_qa")
    parser.add_argument("--grid", default=json.dumps(GRID),
                        help=f"JSON: method -> rates (methods: the PoC's, or {MATCHED}; "
                             f"NAME+VARIANT, VARIANT one of {sorted(VARIANTS)})")
    parser.add_argument("--steps", type=int, default=24, help="optimizer steps of 8 rows")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                        help="forwards of training and evaluation, as `spadapt poc --precision`")
    parser.add_argument("--validation-rows", type=int, default=64)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)


def method_recipe(recipes: dict, name: str):
    """The recipe `name` names: one of `recipes`, or `NAME+VARIANT` (a spadapt recipe of
    `recipes` with `VARIANTS[VARIANT]`'s adapter settings)."""
    base_name, _, variant = name.partition("+")
    if base_name not in recipes or (variant and variant not in VARIANTS):
        raise SystemExit(f"--grid names {name!r}: methods are {sorted(recipes)}, optionally "
                         f"with +VARIANT, one of {sorted(VARIANTS)}")
    recipe = recipes[base_name]
    if not variant:
        return recipe
    if recipe.kind != "spadapt":
        raise SystemExit(f"--grid names {name!r}: variants apply to spadapt recipes only")
    return dataclasses.replace(recipe, name=name,
                               adapter={**recipe.adapter, **VARIANTS[variant]})


def validation_group(dataset: str, prompt: str) -> str:
    """What a validation split keeps on one side: the country of a `country_qa` question (the
    name in its `QUESTIONS` template), else the prompt itself."""
    from spadapt.data.country_qa import QUESTIONS

    if dataset == "country_qa":
        for question in QUESTIONS.values():
            before, after = question.split("{}")
            if prompt.startswith(before) and prompt.endswith(after):
                return prompt[len(before):len(prompt) - len(after)]
        raise ValueError(f"not a country_qa question: {prompt!r}")
    return prompt


def main(args: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.data.split import group_split
    from spadapt.method_runs import GENERATE_BUDGETS, subset_rows
    from spadapt.poc import load_methods, run_method
    from spadapt.poc_options import PocOptions
    from spadapt.tasks import CausalLMTask
    from spadapt.train.levers import resolve_precision

    precision, _ = resolve_precision(args.precision, "cpu")
    settings = {"steps": args.steps, "batch_size": 8, "max_length": 128,
                "validation_rows": args.validation_rows, "precision": precision}
    results = {"settings": settings, "runs": {}}
    if args.resume and args.out.exists():
        results = json.loads(args.out.read_text())
        if results.get("settings") != settings:
            raise SystemExit(f"{args.out} holds runs with other settings "
                             f"({results.get('settings')}); resume it with those, or write to "
                             "another --out")
    path = str(resolve_model("builtin:smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    split = load_dataset(f"builtin:{args.dataset}")
    train_idx, validation_idx = group_split([validation_group(args.dataset, e.prompt)
                                             for e in split.train], 0, 0.15)
    train = [split.train[i] for i in train_idx]
    validation = subset_rows([split.train[i] for i in validation_idx], args.validation_rows, 1)
    train_settings = {**GENERATE_BUDGETS["quick"]["train"], "max_steps": args.steps,
                      "epochs": 1000, "precision": precision}
    task = CausalLMTask(tokenizer, max_length=128, max_new_tokens=32, quality_metric="rouge_l")
    base = task.load_base(path)
    recipes = {r.name: r for r in load_methods("generate", None, base)}
    recipes[MATCHED] = matched_delta_recipe(base)
    del base
    for name, rates in json.loads(args.grid).items():
        for rate in rates:
            key = f"{args.dataset}/{name}/{rate}"
            if key in results["runs"]:
                continue
            recipe = method_recipe(recipes, name)
            recipe = dataclasses.replace(recipe, train={**recipe.train, "learning_rate": rate})
            options = PocOptions(out=Path("runs/bench_generate_lr") / args.dataset / name /
                                 str(rate), data=f"builtin:{args.dataset}", progress=False)
            started = time.perf_counter()
            measured = run_method(recipe, task, train, validation, options, path,
                                  train_settings)
            results["runs"][key] = {
                **{k: measured[k] for k in ("eval_loss", "exact_match", "rouge_l",
                                            "nonzero_params", "train_seconds")},
                "machine": machine()}
            print(key, results["runs"][key], f"{time.perf_counter() - started:.0f} s",
                  flush=True)
            atomic.write_file(args.out, json.dumps(results, indent=1).encode())
    return results
