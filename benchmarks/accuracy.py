"""Accuracy at an equal budget of trained non-zero values, and the SparseAdapter paper's claims.

Matched budget: every method gets about `BUDGET_FRACTION` (0.5%) of the base's parameters as
trained non-zero values (the 2- or 8-label head comes on top, the same for all): the
hyper-parameter that sets each method's size (LoRA/SHiRA rank, adapter width, density) is
solved for that count from the model's shapes, and the count actually built is recorded.
Full fine-tuning is the reference above; the head alone trained on the frozen base (`head`,
the step benchmark's floor) the reference below. Claims (He et al. 2022, SparseAdapter), at
the recipes' r=64: SNIP at density 0.6 ≥ dense adapter; random at density 0.2 within 1 point
of dense; large-sparse ≥ dense at the same non-zeros.

Processes running different `--seeds` may share the result file: each merges the others'
runs under a lock before it writes.

Every run: spadapt.train (AdamW, warm-up + linear decay), a fixed-seed stratified subset of
`--train-rows` training rows, one pass (`--epochs`), batch 32 × 64 tokens, `--eval-rows`
evaluation rows; learning rates are the builtin recipes' (SHiRA and Super-Tuning, which train
values inside the base weights like sparse_delta, get sparse_delta's). Results go to
benchmarks/results/accuracy.json after every run, so a long run shows progress and resumes.

Learning-rate sweep: `--lr-scales 0.5,1,2` runs each method at those multiples of its recipe's
learning rate (the head's own rate, where a recipe sets one, stays), as methods named
`<method>@<scale>x`; `--validation-rows N` also scores every run on N training-split rows that
are not among its training rows, so that a learning rate can be chosen without the evaluation
rows (BENCHMARKS.md chooses by seed 0's validation accuracy and reports the evaluation rows).
`--warmup-ratios 0,0.1` and `--head-lr-scales 1,3` vary the warm-up and the head's rate the
same way, as configurations of the method (`<method>+warmup0`, `<method>+head3x`; the
defaults keep the method's own name).

A recipe file (the `best.yaml` a `spadapt tune` study writes) runs beside them as a method
named by `--recipe-file NAME=PATH` (group "tuned"): its adapter at its own size (not solved for
the matched budget) and its learning rates, trained with this benchmark's budget.

    python -m benchmarks accuracy [--datasets rotten_tomatoes,reuters_r8] [--seeds 0,1,2]
        [--recipe-file tuned_rt=runs/tune_rt/best.yaml --methods full,tuned_rt]
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spadapt import AdaptedModel
from spadapt.poc import build_model, load_seeded_base, subset_rows
from spadapt.recipe import load_recipe
from spadapt.train import TrainConfig

from .common import BATCH_SIZE, RESULTS_DIR, SEQUENCE_LENGTH, write_result
from .competitors import freeze_except_head, linear_target_layers, linear_targets_regex, shira_rank

BUDGET_FRACTION = 0.005  # trained non-zero values as a fraction of the base's parameters


@dataclass
class Entry:
    name: str  # result key
    group: str  # "matched" (equal budget) or "claims" (the paper's settings)
    description: str  # one line for the tables
    build: Callable[[nn.Module, list[str], list[dict], int], nn.Module]  # base, labels, calib, seed
    learning_rate: float  # AdamW peak learning rate of the method's recipe
    head_learning_rate: float | None = None  # the recipe's head learning rate
    by_default: bool = True  # run when --methods is not given (variants run only when named)
    calibration_batches: int = 2  # batches of training rows handed to data-driven scorers
    warmup_ratio: float | None = None  # fraction of steps warmed up; None = TrainConfig's


def _lora_layers(base: nn.Module, names: tuple[str, ...]) -> list[nn.Linear]:
    return [m for n, m in base.named_modules()
            if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in names]


def _adapter_sites(base: nn.Module) -> tuple[int, int]:
    """(number of Pfeiffer adapter sites = layers, hidden size)."""
    return base.config.num_hidden_layers, base.config.hidden_size


def _recipe(name: str, **sections) -> Callable:
    """Built by spadapt.poc.build_model from builtin recipe `name`, with `sections` (its
    `kind`, `adapter` or `lora` settings) replaced."""
    def build(base, labels, calibration, seed):
        template = load_recipe(name)
        recipe = dataclasses.replace(template, **sections)
        return build_model(recipe, base, labels, calibration, seed)
    return build


def _spadapt(adapter: dict, recipe: str) -> Callable:
    return _recipe(recipe, kind="spadapt", adapter=adapter)


def _peft(kind: str, **settings) -> Callable:
    """PEFT SHiRA or Super-Tuning (the PoC's recipes know only PEFT's LoRA)."""
    def build(base, labels, calibration, seed):
        import peft

        torch.manual_seed(seed)
        config_class = {"shira": peft.ShiraConfig, "supertuning": peft.SupertuningConfig}[kind]
        extra = {"random_seed": seed} if kind == "shira" else {}
        return peft.get_peft_model(base, config_class(task_type="SEQ_CLS", **settings, **extra))
    return build


def _head_only(base, labels, calibration, seed):
    """The frozen base with only its new task head trained: the accuracy of the floor method
    of the step benchmark, and the reference that shows how much adapting the base adds."""
    return freeze_except_head(base)


def entries(base: nn.Module) -> list[Entry]:
    """Every method of the benchmark, sized for `base`."""
    budget = BUDGET_FRACTION * sum(p.numel() for p in base.parameters())
    density = budget / sum(m.weight.numel() for m in linear_target_layers(base))
    shira_r = shira_rank(base, density)
    lora_names = ("query", "key", "value", "dense")
    lora_r = max(1, round(budget / sum(m.in_features + m.out_features
                                       for m in _lora_layers(base, lora_names))))
    sites, hidden = _adapter_sites(base)
    adapter_r = max(1, round((budget / sites - hidden) / (2 * hidden + 1)))
    sparse_r = max(1, round(budget / (0.2 * 2 * hidden * sites)))
    targets = linear_targets_regex(base)
    pfeiffer = {"method": "bottleneck", "placement": "pfeiffer"}
    lr = {name: load_recipe(name).train for name in
          ("full", "lora", "adapter", "sparse", "large_sparse", "l0", "sparse_delta")}

    def rates(recipe: str) -> dict:
        return {"learning_rate": lr[recipe]["learning_rate"],
                "head_learning_rate": lr[recipe].get("head_learning_rate")}

    return [
        Entry("full", "matched", "full fine-tuning (all weights)", _recipe("full"),
              **rates("full")),
        Entry("head", "reference", "classifier head only (frozen base; the floor's method)",
              _head_only, learning_rate=lr["sparse"]["learning_rate"]),  # the rate its head has
        Entry("lora", "matched", f"PEFT LoRA r={lora_r} (query/key/value/dense)",
              _recipe("lora", lora={"r": lora_r, "lora_alpha": 2 * lora_r,
                                    "lora_dropout": 0.1, "target_modules": list(lora_names)}),
              **rates("lora")),
        Entry("shira", "matched", f"PEFT SHiRA r={shira_r} (all linear layers)",
              _peft("shira", r=shira_r, target_modules=targets), **rates("sparse_delta")),
        Entry("supertuning", "matched",
              f"PEFT Super-Tuning (all linear layers, density {density:.4f})",
              _peft("supertuning", sparsity=1 - density, target_modules=targets),
              **rates("sparse_delta")),
        Entry("adapter", "matched", f"spadapt dense adapter r={adapter_r}",
              _spadapt({**pfeiffer, "bottleneck": adapter_r, "density": 1.0}, "adapter"),
              **rates("adapter")),
        Entry("sparse", "matched", f"spadapt sparse adapter r={sparse_r}, SNIP, density 0.2",
              _spadapt({**pfeiffer, "bottleneck": sparse_r, "density": 0.2, "scorer": "snip"},
                       "sparse"), **rates("sparse")),
        Entry("large_sparse", "matched",
              f"spadapt large-sparse r={adapter_r}→{round(adapter_r / 0.2)}, SNIP, density 0.2",
              _spadapt({**pfeiffer, "bottleneck": adapter_r, "density": 0.2, "scorer": "snip",
                        "large_sparse": True}, "large_sparse"), **rates("large_sparse")),
        Entry("l0", "matched", f"spadapt learned mask (L0) r={sparse_r}, density 0.2",
              _spadapt({**pfeiffer, "bottleneck": sparse_r, "density": 0.2,
                        "schedule": "learned"}, "l0"), **rates("l0")),
        Entry("sparse_delta", "matched",
              f"spadapt sparse_delta (all linear layers, density {density:.4f})",
              _spadapt({"method": "sparse_delta", "density": density, "scorer": "magnitude"},
                       "sparse_delta"), **rates("sparse_delta")),
        # Other configurations of the sparse adapter at the same budget, run when named (they
        # compete with it on validation rows in the sweep of BENCHMARKS.md).
        *[Entry(f"sparse+{variant}", "variants", f"spadapt sparse adapter {text}",
                _spadapt({**pfeiffer, "bottleneck": sparse_r, "density": 0.2, "scorer": "snip",
                          **changes}, "sparse"), **rates("sparse"), by_default=False)
          for variant, text, changes in (
              ("houlsby", f"r={round(sparse_r / 2)}, SNIP, density 0.2, Houlsby (2 per layer)",
               {"placement": "houlsby", "bottleneck": round(sparse_r / 2)}),
              ("parallel", f"r={sparse_r}, SNIP, density 0.2, parallel to the FFN",
               {"placement": "parallel"}),
              ("density0.5", f"r={round(sparse_r * 0.2 / 0.5)}, SNIP, density 0.5",
               {"density": 0.5, "bottleneck": round(sparse_r * 0.2 / 0.5)}),
              ("random", f"r={sparse_r}, random, density 0.2", {"scorer": "random"}),
              # after the whole BERT output block: the adapter reads the LayerNorm-ed residual
              # stream, as AdapterHub's Pfeiffer adapter does, instead of the raw FFN output
              ("postln", f"r={sparse_r}, SNIP, density 0.2, after the FFN block's LayerNorm",
               {"target_modules": [r"(?:^|\.)layer\.\d+\.output$"]}),
              ("houlsby_postln", f"r={round(sparse_r / 2)}, SNIP, density 0.2, after the "
               "attention and the FFN blocks' LayerNorms (2 per layer)",
               {"target_modules": [r"(?:^|\.)layer\.\d+\.(?:attention\.)?output$"],
                "bottleneck": round(sparse_r / 2)}))],
        # Position selection for the sparse delta beyond one-shot magnitude (issue 14), at the
        # same budget and rate: FISH's Fisher scores on 512 training rows (over all layers, as
        # FISH, and per layer), and SpIEL-style drop-and-regrow every 20 steps (30% of
        # positions at first, decaying to 0 at 70% of training).
        Entry("sparse_delta+fisher", "variants",
              f"spadapt sparse_delta (density {density:.4f}), Fisher on 512 rows",
              _spadapt({"method": "sparse_delta", "density": density, "scorer": "fisher",
                        "score_batches": 16}, "sparse_delta"), **rates("sparse_delta"),
              by_default=False, calibration_batches=16),
        Entry("sparse_delta+fisher_layer", "variants",
              f"spadapt sparse_delta (density {density:.4f} in each layer), Fisher on 512 rows",
              _spadapt({"method": "sparse_delta", "density": density, "scorer": "fisher",
                        "score_batches": 16, "budget": "layer"}, "sparse_delta"),
              **rates("sparse_delta"), by_default=False, calibration_batches=16),
        Entry("sparse_delta+regrow", "variants",
              f"spadapt sparse_delta (density {density:.4f}), magnitude, regrow every 20 steps",
              _spadapt({"method": "sparse_delta", "density": density, "scorer": "magnitude",
                        "schedule": "regrow", "regrow_every": 20, "regrow_fraction": 0.3},
                       "sparse_delta"), **rates("sparse_delta"), by_default=False),
        # LT-SFT: half of the steps dense (the dense delta at 1/100 of the rate, full
        # fine-tuning's 1e-4), then the positions that moved most in each layer, reset to 0;
        # for the bottleneck the dense adapter's half, then the entries that moved most,
        # rewound to their initialisation.
        Entry("sparse_delta+lottery", "variants",
              f"spadapt sparse_delta (density {density:.4f} in each layer), lottery (LT-SFT)",
              _spadapt({"method": "sparse_delta", "density": density, "scorer": "magnitude",
                        "budget": "layer", "schedule": "lottery", "prune_end": 0.5},
                       "sparse_delta"), **rates("sparse_delta"), by_default=False),
        Entry("sparse+lottery", "variants",
              f"spadapt sparse adapter r={sparse_r}, density 0.2, lottery (LT-SFT)",
              _spadapt({**pfeiffer, "bottleneck": sparse_r, "density": 0.2, "scorer": "random",
                        "schedule": "lottery", "prune_end": 0.5}, "sparse"),
              **rates("sparse"), by_default=False),
        # SpIEL-style drop-and-regrow for the sparse adapter's masks (the recipe's site, after
        # the FFN block's LayerNorm), as for the sparse delta above.
        Entry("sparse+regrow", "variants",
              f"spadapt sparse adapter r={sparse_r}, SNIP, density 0.2, after the FFN block's "
              "LayerNorm, regrow every 20 steps",
              _spadapt({**pfeiffer, "bottleneck": sparse_r, "density": 0.2, "scorer": "snip",
                        "target_modules": [r"(?:^|\.)layer\.\d+\.output$"],
                        "schedule": "regrow", "regrow_every": 20, "regrow_fraction": 0.3},
                       "sparse"), **rates("sparse"), by_default=False),
        Entry("claim_dense_r64", "claims", "dense adapter r=64",
              _spadapt({**pfeiffer, "bottleneck": 64, "density": 1.0}, "adapter"),
              **rates("adapter")),
        Entry("claim_snip_0.6", "claims", "SNIP at init, density 0.6, r=64",
              _spadapt({**pfeiffer, "bottleneck": 64, "density": 0.6, "scorer": "snip"},
                       "sparse"), **rates("sparse")),
        Entry("claim_random_0.2", "claims", "random at init, density 0.2, r=64",
              _spadapt({**pfeiffer, "bottleneck": 64, "density": 0.2, "scorer": "random"},
                       "sparse"), **rates("sparse")),
        Entry("claim_large_sparse", "claims", "large-sparse r=64→320, SNIP, density 0.2",
              _spadapt({**pfeiffer, "bottleneck": 64, "density": 0.2, "scorer": "snip",
                        "large_sparse": True}, "large_sparse"), **rates("large_sparse")),
    ]


def recipe_entries(specs: list[str]) -> list[Entry]:
    """One entry per `NAME=PATH` of `--recipe-file`: the recipe's adapter and learning rates."""
    chosen = []
    for spec in specs:
        name, _, path = spec.partition("=")
        if not name or not path or "/" in name:
            raise SystemExit(f"--recipe-file: expected NAME=PATH, got {spec!r}")
        recipe = load_recipe(path)
        if recipe.kind != "spadapt":
            raise SystemExit(f"--recipe-file {path}: a spadapt recipe is needed, this one is "
                             f"{recipe.kind!r}")
        chosen.append(Entry(name, "tuned", recipe.description, _built(recipe),
                            learning_rate=recipe.train["learning_rate"],
                            head_learning_rate=recipe.train.get("head_learning_rate"),
                            calibration_batches=recipe.adapter_config().score_batches))
    return chosen


def _built(recipe) -> Callable:
    """Built by spadapt.poc.build_model from `recipe` as loaded (the file is read once)."""
    def build(base, labels, calibration, seed):
        return build_model(recipe, base, labels, calibration, seed)
    return build


def swept(chosen: list[Entry], scales: list[float]) -> list[Entry]:
    """Each entry at each multiple of its learning rate, named `<name>@<scale>x`."""
    return [dataclasses.replace(entry, name=f"{entry.name}@{scale:g}x",
                                description=f"{entry.description}, "
                                            f"lr {entry.learning_rate * scale:.2g}",
                                learning_rate=entry.learning_rate * scale)
            for entry in chosen for scale in scales]


def varied(chosen: list[Entry], warmup_ratios: list[float],
           head_scales: list[float]) -> list[Entry]:
    """Each entry at each warm-up ratio and each multiple of its head's learning rate (the
    recipe's head rate, else its learning rate), as configurations of its method:
    `<name>+warmup<ratio>`, `<name>+head<scale>x`. TrainConfig's warm-up and a head scale of 1
    keep the entry's name, so a sweep resumes the runs made with the defaults."""
    default_warmup = TrainConfig().warmup_ratio
    out = []
    for entry in chosen:
        for ratio in warmup_ratios or [default_warmup]:
            for scale in head_scales or [1.0]:
                name, description, changes = entry.name, entry.description, {}
                if ratio != default_warmup:
                    name += f"+warmup{ratio:g}"
                    description += f", warm-up {ratio:g}"
                    changes["warmup_ratio"] = ratio
                if scale != 1:
                    head = (entry.head_learning_rate or entry.learning_rate) * scale
                    name += f"+head{scale:g}x"
                    description += f", head lr {head:.2g}"
                    changes["head_learning_rate"] = head
                out.append(dataclasses.replace(entry, name=name, description=description,
                                               **changes))
    return out


def method_settings(entry: Entry) -> dict:
    """What makes an entry's runs comparable: a change makes them stale on `--resume`. The
    warm-up is recorded only where it is not TrainConfig's, so older result files resume."""
    settings = {"group": entry.group, "description": entry.description,
                "learning_rate": entry.learning_rate,
                "head_learning_rate": entry.head_learning_rate}
    if entry.warmup_ratio is not None:
        settings["warmup_ratio"] = entry.warmup_ratio
    return settings


def sweep_base(name: str) -> tuple[str, float]:
    """(configuration, learning-rate scale) of a result name; scale 1 for an unswept one."""
    configuration, _, scale = name.partition("@")
    return configuration, float(scale.removesuffix("x")) if scale else 1.0


def method_of(configuration: str) -> str:
    """The method a configuration belongs to: `sparse+houlsby` is one of `sparse`."""
    return configuration.split("+")[0]


def validation_rows(train: list, train_rows: list, rows: int, seed: int) -> list:
    """A fixed-seed stratified subset of the training split's rows not in `train_rows`."""
    used = {id(row) for row in train_rows}
    return subset_rows([row for row in train if id(row) not in used], rows, seed)


def nonzero_values(model: nn.Module) -> int:
    """Trained non-zero values the method stores (head included)."""
    if isinstance(model, AdaptedModel):
        return model.parameter_report()["nonzero"]
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_config(entry: Entry, epochs: int, seed: int) -> TrainConfig:
    """The benchmark's budget with the entry's learning rates and warm-up."""
    warmup = {} if entry.warmup_ratio is None else {"warmup_ratio": entry.warmup_ratio}
    return TrainConfig(learning_rate=entry.learning_rate,
                       head_learning_rate=entry.head_learning_rate, epochs=epochs,
                       batch_size=BATCH_SIZE, max_length=SEQUENCE_LENGTH, seed=seed,
                       early_stopping_patience=None, checkpoint_every=0, progress=False,
                       log_csv=False, log_tensorboard=False, **warmup)


def run_one(entry: Entry, dataset: str, seed: int, options: argparse.Namespace) -> dict:
    from transformers import AutoTokenizer

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.tasks import ClassificationTask
    from spadapt.train import train

    split = load_dataset(f"builtin:{dataset}", seed=seed)
    train_rows = subset_rows(split.train, options.train_rows, seed)
    eval_rows = subset_rows(split.eval, options.eval_rows, seed + 1)
    held_out = validation_rows(split.train, train_rows, options.validation_rows, seed + 2)
    path = str(resolve_model("builtin:minilm"))
    task = ClassificationTask(AutoTokenizer.from_pretrained(path, local_files_only=True),
                              list(split.labels), SEQUENCE_LENGTH)
    calibration = [task.collate(train_rows[i * BATCH_SIZE : (i + 1) * BATCH_SIZE])
                   for i in range(entry.calibration_batches)]
    model = entry.build(load_seeded_base(task, path, seed), list(split.labels), calibration,
                        seed)
    started = time.perf_counter()
    result = train(model, task, train_rows, eval_rows, train_config(entry, options.epochs, seed))
    scores = {"accuracy": result.final_metrics["accuracy"],
              "macro_f1": result.final_metrics["macro_f1"],
              "nonzero_values": nonzero_values(model), "steps": result.steps,
              "seconds": time.perf_counter() - started}
    if held_out:
        scores["validation_accuracy"] = task.evaluate(model, held_out, BATCH_SIZE)["accuracy"]
    return scores


def summarize(runs: dict) -> dict:
    """Per dataset and method: mean ± std of accuracy over seeds."""
    summary: dict = {}
    for key, run in runs.items():
        dataset, name, _ = key.split("/")
        summary.setdefault(dataset, {}).setdefault(name, []).append(run["accuracy"])
    table = {}
    for dataset, methods in summary.items():
        table[dataset] = {name: {"mean": statistics.mean(values),
                                 "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                 "seeds": len(values)}
                          for name, values in methods.items()}
    return table


def kept_runs(previous: dict, settings: dict) -> dict:
    """The runs of a previous result file made with the same budget and, per method, the same
    method settings (a changed learning rate or size makes that method's runs stale)."""
    old = previous.get("settings", {})
    budget = [k for k in settings if k != "methods"]
    if any(old.get(k) != settings[k] for k in budget):
        return {}
    recorded = old.get("methods", {})
    stale = {name for name, method in settings["methods"].items()
             if name in recorded and recorded[name] != method}
    return {key: run for key, run in previous.get("runs", {}).items()
            if key.split("/")[1] not in stale}


def run(options: argparse.Namespace) -> dict:
    from .common import load_base

    path = RESULTS_DIR / f"{options.name}.json"
    datasets = [d for d in options.datasets.split(",") if d]
    seeds = [int(s) for s in options.seeds.split(",") if s]
    chosen = entries(load_base(rows=64).model) + recipe_entries(options.recipe_file)
    if options.methods:
        wanted = options.methods.split(",")
        unknown = set(wanted) - {e.name for e in chosen}
        if unknown:
            raise SystemExit(f"--methods: no method named {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(e.name for e in chosen)}")
        chosen = [e for e in chosen if e.name in wanted]
    else:
        chosen = [e for e in chosen if e.by_default or e.group == "tuned"]
    if options.warmup_ratios or options.head_lr_scales:
        chosen = varied(chosen, [float(r) for r in options.warmup_ratios.split(",") if r],
                        [float(s) for s in options.head_lr_scales.split(",") if s])
    if options.lr_scales:
        chosen = swept(chosen, [float(s) for s in options.lr_scales.split(",")])
    settings = {"train_rows": options.train_rows, "eval_rows": options.eval_rows,
                "epochs": options.epochs, "batch_size": BATCH_SIZE,
                "sequence_length": SEQUENCE_LENGTH, "budget_fraction": BUDGET_FRACTION,
                "methods": {e.name: method_settings(e) for e in chosen}}
    if options.validation_rows:  # absent otherwise: files written before it stay resumable
        settings["validation_rows"] = options.validation_rows
    previous = json.loads(path.read_text()) if path.exists() and options.resume else {}
    runs = kept_runs(previous, settings)
    if runs:  # methods of the previous file that this call does not run stay described
        settings["methods"] = {**previous["settings"]["methods"], **settings["methods"]}

    def save() -> dict:
        # Under a lock, with the runs another process (other seeds) has written meanwhile.
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                written = json.loads(path.read_text())
                for key, other in kept_runs(written, settings).items():
                    runs.setdefault(key, other)
                for name, method in written.get("settings", {}).get("methods", {}).items():
                    settings["methods"].setdefault(name, method)
            payload = {"settings": settings, "runs": runs, "summary": summarize(runs)}
            write_result(options.name, payload)
        return payload

    for seed in seeds:
        for dataset in datasets:
            for entry in chosen:
                key = f"{dataset}/{entry.name}/{seed}"
                if key in runs:
                    continue
                runs[key] = run_one(entry, dataset, seed, options)
                print(f"{key}: {runs[key]['accuracy']:.4f} "
                      f"({runs[key]['nonzero_values']} values, {runs[key]['seconds']:.0f} s)",
                      flush=True)
                save()
    return save()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", default="rotten_tomatoes,reuters_r8")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--train-rows", type=int, default=2048)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr-scales", default="",
                        help="comma-separated multiples of each recipe's learning rate to sweep")
    parser.add_argument("--warmup-ratios", default="",
                        help="comma-separated warm-up ratios to sweep (0.1, TrainConfig's, "
                             "keeps the method's name)")
    parser.add_argument("--head-lr-scales", default="",
                        help="comma-separated multiples of each recipe's head learning rate "
                             "to sweep (1 keeps the method's name)")
    parser.add_argument("--validation-rows", type=int, default=0,
                        help="also score each run on this many held-out training-split rows")
    parser.add_argument("--recipe-file", action="append", default=[], metavar="NAME=PATH",
                        help="also run the recipe at PATH (e.g. a tune study's best.yaml) as "
                             "method NAME; repeatable")
    parser.add_argument("--name", default="accuracy", help="result file name (no .json)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in benchmarks/results/accuracy.json")


def main(args: argparse.Namespace) -> dict:
    return run(args)
