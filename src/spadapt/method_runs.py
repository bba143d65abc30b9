"""One method's run as the PoC and the search (`spadapt tune`) both make it: the training
budgets, fixed-seed row subsets, the seeded base, the model to train and its parameter counts.
"""

from __future__ import annotations

import torch
from torch import nn

from .peft_methods import lora_model, shira_model
from .recipe import Recipe
from .train.levers import resolve_precision

# How much each method gets. quick: a first look in minutes; standard: the real comparison.
BUDGETS: dict[str, dict] = {
    # quick: 128 steps of 32 rows for every method (one pass over 4,096 rows; a smaller set
    # is passed over again, at most 3 times). At 64 steps every method was far from where 256
    # steps puts it, and not by the same amount (benchmarks/accuracy on Reuters R8: full
    # fine-tuning 0.875 and the sparse adapter 0.761 at 64 steps, 0.972 and 0.966 at 256);
    # this PoC at 128 steps on R8 (seed 0, bf16): full 0.961, sparse_delta 0.968, sparse 0.928.
    # "precision" (a budget's default for `spadapt poc --precision`; absent: the recipe's own):
    # auto is bf16 autocast where the hardware computes bf16 natively, else fp32. On this
    # 2-core AVX512-BF16 CPU a MiniLM step of 32 rows × 64 tokens takes 0.47–0.49 s under
    # bf16 against 0.87–0.89 s in fp32, and the quick PoC 5–8 min instead of 11–17
    "quick": {"train_rows": 4096, "eval_rows": 1000, "precision": "auto", "train": {
        "epochs": 3, "max_steps": 128, "batch_size": 32, "max_length": 64,
        "early_stopping_patience": None, "checkpoint_every": 0}},
    "standard": {"train_rows": None, "eval_rows": None, "train": {
        "epochs": 3, "batch_size": 32, "max_length": 64, "early_stopping_patience": 1,
        "checkpoint_every": 100}},
    "recipe": {"train_rows": None, "eval_rows": None, "train": {}},  # `spadapt train`
    "smoke": {"train_rows": 128, "eval_rows": 128, "train": {  # tests: seconds, not results
        "epochs": 1, "max_steps": 4, "batch_size": 32, "max_length": 32,
        "early_stopping_patience": None, "checkpoint_every": 0}},
}


# The same budgets for `spadapt poc --task generate` on a decoder: a step there costs about 15×
# one of MiniLM on these cores (SmolLM2-135M, 8 rows of ~60 tokens: ~5 s), so rows and steps
# are fewer; `max_new_tokens` bounds each greedy answer.
GENERATE_BUDGETS: dict[str, dict] = {
    # quick: 24 steps of 8 rows for every method; 100 evaluation prompts answered
    # (SmolLM2 on this CPU under bf16: a step of 8 rows 2.5–3.7 s against 5.2–6.8 s in fp32)
    "quick": {"train_rows": 4096, "eval_rows": 100, "max_new_tokens": 32, "precision": "auto",
              "train": {"epochs": 3, "max_steps": 24, "batch_size": 8, "eval_batch_size": 16,
                        "max_length": 128, "early_stopping_patience": None,
                        "checkpoint_every": 0}},
    "standard": {"train_rows": None, "eval_rows": None, "max_new_tokens": 64, "train": {
        "epochs": 3, "batch_size": 8, "eval_batch_size": 16, "max_length": 256,
        "early_stopping_patience": 1, "checkpoint_every": 100}},
    "recipe": {"train_rows": None, "eval_rows": None, "max_new_tokens": 64, "train": {}},
    "smoke": {"train_rows": 32, "eval_rows": 16, "max_new_tokens": 8, "train": {
        "epochs": 1, "max_steps": 4, "batch_size": 8, "eval_batch_size": 16,
        "max_length": 64, "early_stopping_patience": None, "checkpoint_every": 0}},
}


def budget_rule(train: dict, train_rows: int) -> dict:
    """What every method of a run gets, for the report: `steps` (optimizer steps, an upper
    bound under early stopping), epochs, batch size, early-stopping patience and, when
    `train` sets it, the precision of the forwards."""
    batch = train.get("batch_size", 32)
    steps = train.get("epochs", 1) * max(1, -(-train_rows // batch))
    if train.get("max_steps"):
        steps = min(steps, train["max_steps"])
    return {"steps": steps, "max_steps": train.get("max_steps"), "epochs": train.get("epochs"),
            "batch_size": batch, "early_stopping_patience": train.get("early_stopping_patience"),
            **({"precision": train["precision"]} if "precision" in train else {})}


def with_precision(budget: dict, setting: str | None) -> tuple[dict, dict]:
    """`budget` with the precision of its forwards resolved for this machine's device:
    `setting` (a `--precision`), else the budget's own default ("auto" on quick). Returns
    (the budget with `train.precision` set, {"precision", "precision_reason"} for
    results.json); where neither sets one, the budget as it is and {} (each recipe's own)."""
    chosen = setting or budget.get("precision")
    if chosen is None:
        return budget, {}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    value, why = resolve_precision(chosen, device)
    return ({**budget, "train": {**budget["train"], "precision": value}},
            {"precision": value, "precision_reason": why})


def subset_rows(examples: list, rows: int | None, seed: int) -> list:
    """A fixed-seed, label-stratified subset of at most `rows` examples, in shuffled order.

    Each label keeps about its share of `examples`; examples without a `label` attribute
    (prompt/response pairs) form one group. `rows=None`, or `rows` at least `len(examples)`,
    returns all of them in their own order. The same `seed` gives the same subset, so every
    method of a run sees the same rows.
    """
    if rows is None or len(examples) <= rows:
        return list(examples)
    generator = torch.Generator().manual_seed(seed)
    by_label: dict[int, list] = {}
    for example in examples:  # prompt/response examples have no label: one group
        by_label.setdefault(getattr(example, "label", 0), []).append(example)
    chosen = []
    for label in sorted(by_label):
        group = by_label[label]
        take = max(1, round(rows * len(group) / len(examples)))
        order = torch.randperm(len(group), generator=generator)[:take].tolist()
        chosen += [group[i] for i in order]
    order = torch.randperm(len(chosen), generator=generator).tolist()
    return [chosen[i] for i in order][:rows]


def load_seeded_base(task, model_path: str, seed: int) -> nn.Module:
    """`task`'s base model with its new head initialised from `seed`, so that a method's run
    does not depend on what ran before it in the process."""
    torch.manual_seed(seed)
    return task.load_base(model_path)


def build_model(recipe: Recipe, base, labels: list[str], calibration: list[dict], seed: int):
    """The model to train for `recipe`, built on `base` (which it may modify)."""
    torch.manual_seed(seed)
    if recipe.kind == "full":
        for parameter in base.parameters():
            parameter.requires_grad_(True)
        return base
    if recipe.kind == "base":
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        return base
    if recipe.kind == "lora":
        return lora_model(base, recipe.lora, classifier=bool(labels))
    if recipe.kind == "shira":
        return shira_model(base, recipe.shira, classifier=bool(labels), seed=seed)
    from .masks import SCORERS
    from .model import attach, scores_at_attach

    config = recipe.adapter_config(labels=list(labels), seed=seed)
    needs_data = scores_at_attach(config) and SCORERS[config.scorer].needs_data
    return attach(base, config, adapter_name="default",
                  calibration=calibration if needs_data else None)


def count_parameters(recipe: Recipe, model) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if recipe.kind == "spadapt":
        report = model.parameter_report()
        return {"base_params": report["base"], "trainable_params": report["trainable"],
                "nonzero_params": report["nonzero"]}
    base = sum(p.numel() for n, p in model.named_parameters()
               if "lora_" not in n and "shira_" not in n and "modules_to_save" not in n)
    return {"base_params": base, "trainable_params": trainable, "nonzero_params": trainable}


def calibration_batches(recipe: Recipe, task, rows: list, batch_size: int = 32) -> list[dict]:
    """The batches of `batch_size` training rows a spadapt recipe's scorer reads at attach
    (its `score_batches`); none for other kinds."""
    count = recipe.adapter_config().score_batches if recipe.kind == "spadapt" else 0
    return [task.collate(rows[i * batch_size : (i + 1) * batch_size])
            for i in range(count) if i * batch_size < len(rows)]
