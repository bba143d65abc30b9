"""The search of `spadapt tune`: an Optuna study over `space`, each trial a PoC-budget run.

Trials train on the training rows and are scored on validation rows split off the training
data (a seeded, label-stratified subset the trials never train on); the evaluation rows are
never read. The score is the validation accuracy of a classifier (maximised), or the
validation response loss on prompt/response data (minimised; no answers are generated).
The study lives in `OUT/study.db` (SQLite) with a seeded TPE sampler and a median pruner fed
by each trial's evaluations during training; `--resume` reopens it, marks a trial
left running by a killed process as failed, and runs until the study holds `trials` completed
or pruned trials.
Written after every trial (atomically): `trials.csv`, `best.yaml` (a recipe `spadapt train
--config` trains as is), `search.png` (validation score against non-zeros) and, for
`--objective pareto` (accuracy, non-zeros and median step time; no pruning), `pareto.csv`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from .. import atomic
from ..method_runs import (
    BUDGETS,
    GENERATE_BUDGETS,
    build_model,
    calibration_batches,
    count_parameters,
    load_seeded_base,
    subset_rows,
    with_precision,
)
from ..poc_options import DEFAULT_MODELS
from ..recipe import Recipe
from ..train.levers import PRECISION_SETTINGS
from .options import TuneOptions
from .space import (
    SHIPPED,
    BudgetCounter,
    TuneError,
    in_words,
    parse_max_nonzero,
    shipped_points,
    suggest,
    tuned_recipe,
)

STUDY_NAME = "spadapt-tune"
OBJECTIVES = ("accuracy", "pareto")  # the score alone; or score, non-zeros, step seconds
SCORES = {"classification": "accuracy", "causal_lm": "loss"}  # data task -> validation metric
DIRECTIONS = {"accuracy": "maximize", "loss": "minimize"}  # metric -> the better way
VALIDATION_ROWS = {"classification": 1000, "causal_lm": 100}  # default --validation-rows
BEST_FILE = "best.yaml"
EVALUATIONS_PER_TRIAL = 4  # validation scores during each trial, for the pruner (a trial's
#                            value is its best; best.yaml leaves this to the recipe's reader)
RANDOM_POINTS = 3  # sampled at random after the shipped recipes, before TPE guides the rest
PRUNE_FROM_EVALUATION = 3  # the median pruner judges a trial from its 3rd evaluation (75% of
# its steps) on. From the 1st (25%) it stopped all 9 sampled trials of a Rotten Tomatoes study
# while warm-up left most near chance (0.58), and the lottery's reset of values at 50% dips
# every lottery trial to chance at the 2nd (the shipped lottery recipe: 0.726, 0.580, then
# 0.783 at the 3rd and the study's best, 0.794, at the 4th).


@dataclass
class TuneData:
    """What every trial of a study shares."""

    task: object  # the ClassificationTask, or the CausalLMTask (loss only) of prompt/response
    model_path: str  # resolved base model folder
    base: object  # the base, loaded once: non-zero counts build on copies of it
    train_rows: list  # what trials train on
    validation_rows: list  # what trials are scored on (never trained on)
    train: dict  # TrainConfig fields of the budget: every trial's, and best.yaml's
    max_nonzero: int  # the constraint, in values
    seed: int
    precision_reason: str | None = None  # why the trials run at train["precision"] (None: unset)
    score: str = "accuracy"  # the validation metric trials are judged by (a key of evaluate())


def split_rows(training: list, train_rows: int | None, validation_rows: int,
               seed: int) -> tuple[list, list]:
    """(train, validation): disjoint, fixed-seed, label-stratified. Validation rows come
    from what the budget's train rows leave over, else (a small set) from the whole training
    split, at most a fifth of it."""
    wanted = min(validation_rows, len(training) // 5)
    if wanted < 1:
        raise TuneError(f"the training data has {len(training)} rows: too few to hold out "
                        "validation rows (at least 5 needed)")
    train = subset_rows(training, train_rows, seed)
    used = {id(row) for row in train}
    rest = [row for row in training if id(row) not in used]
    if len(rest) < wanted:
        validation = subset_rows(training, wanted, seed + 2)
        held = {id(row) for row in validation}
        train = subset_rows([row for row in training if id(row) not in held], train_rows, seed)
    else:
        validation = subset_rows(rest, wanted, seed + 2)
    return train, validation


def prepare(options: TuneOptions) -> TuneData:
    """Load the data and the base, split the validation rows, check the options."""
    from transformers import AutoTokenizer

    from ..assets import resolve_model
    from ..data import load_dataset
    from ..tasks import CausalLMTask, ClassificationTask

    if options.budget not in BUDGETS or options.budget == "recipe":
        raise TuneError(f"--budget must be one of smoke, quick, standard; got {options.budget!r}")
    if options.objective not in OBJECTIVES:
        raise TuneError(f"--objective must be one of {', '.join(OBJECTIVES)}; got "
                        f"{options.objective!r}")
    if options.precision is not None and options.precision not in PRECISION_SETTINGS:
        raise TuneError(f"--precision must be one of {', '.join(PRECISION_SETTINGS)}; got "
                        f"{options.precision!r}")
    if options.validation_rows is not None and options.validation_rows < 1:
        raise TuneError(f"--validation-rows must be at least 1, got {options.validation_rows}")
    if options.trials < 1:
        raise TuneError(f"--trials must be at least 1, got {options.trials}")
    if options.minutes is not None and not options.minutes > 0:
        raise TuneError(f"--minutes must be positive, got {options.minutes}")
    split = load_dataset(options.data, options.eval_data, text_column=options.text_column,
                         label_column=options.label_column, prompt_column=options.prompt_column,
                         response_column=options.response_column, seed=options.seed)
    if split.task not in SCORES:
        raise TuneError(f"{options.data}: spadapt tune searches classification and "
                        f"prompt/response data; this data is {split.task!r}")
    generate = split.task == "causal_lm"
    budgets = GENERATE_BUDGETS if generate else BUDGETS
    budget, precision = with_precision(budgets[options.budget], options.precision)
    train, validation = split_rows(split.train, budget["train_rows"],
                                   options.validation_rows or VALIDATION_ROWS[split.task],
                                   options.seed)
    model = options.model or DEFAULT_MODELS["generate" if generate else "classify"]
    model_path = str(resolve_model(model))
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    max_length = budget["train"].get("max_length", 128)
    task = (CausalLMTask(tokenizer, max_length=max_length, answers=False) if generate else
            ClassificationTask(tokenizer, list(split.labels), max_length))
    base = task.load_base(model_path)
    base_parameters = sum(p.numel() for p in base.parameters())
    return TuneData(task=task, model_path=model_path, base=base, train_rows=train,
                    validation_rows=validation,
                    train={**budget["train"], "early_stopping_patience": None},
                    max_nonzero=parse_max_nonzero(options.max_nonzero, base_parameters),
                    seed=options.seed, precision_reason=precision.get("precision_reason"),
                    score=SCORES[split.task])


def train_recipe(recipe: Recipe, data: TuneData, out_dir: Path | None = None,
                 on_evaluation=None, on_counts=None) -> dict:
    """Train `recipe` on the study's train rows; its validation score and costs.
    `on_counts(counts)` hears the built model's parameter counts before training starts."""
    from ..train import train

    task = data.task
    base = load_seeded_base(task, data.model_path, data.seed)
    model = build_model(recipe, base, task.labels,
                        calibration_batches(recipe, task, data.train_rows), data.seed)
    counts = count_parameters(recipe, model)
    if on_counts is not None:
        on_counts(counts)
    if counts["nonzero_params"] > data.max_nonzero:
        return {**counts, "infeasible": True}
    config = recipe.train_config(seed=data.seed, progress=False)
    config = dataclasses.replace(config, evals_per_epoch=evaluations_per_epoch(
        config, len(data.train_rows)))
    started = time.perf_counter()
    result = train(model, task, data.train_rows, data.validation_rows, config, out_dir=out_dir,
                   on_evaluation=on_evaluation)
    return {**counts, "infeasible": False, "value": result.final_metrics[data.score],
            "step_seconds": result.step_seconds_median,
            "seconds": time.perf_counter() - started}


def evaluations_per_epoch(config, rows: int) -> int:
    """The `evals_per_epoch` that spreads `EVALUATIONS_PER_TRIAL` evaluations evenly over a
    trial's steps, also when `max_steps` ends it inside its first epoch (the generative
    budgets: 24 steps of an epoch of 512)."""
    per_epoch = -(-rows // (config.batch_size * config.gradient_accumulation))
    steps = min(config.epochs * per_epoch, config.max_steps or config.epochs * per_epoch)
    if steps >= per_epoch:
        return EVALUATIONS_PER_TRIAL
    return max(1, round(EVALUATIONS_PER_TRIAL * per_epoch / steps))


def default_sampler(seed: int):
    """Optuna's TPE sampler, seeded, guided once `RANDOM_POINTS` sampled trials follow the
    shipped recipes' (Optuna's default waits for 10, all random after the 3 enqueued)."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=len(SHIPPED) + RANDOM_POINTS)


def default_pruner():
    """Optuna's median pruner, judging from evaluation `PRUNE_FROM_EVALUATION` on, after 3
    trials (the shipped recipes, enqueued first) have finished."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=3,
                                       n_warmup_steps=PRUNE_FROM_EVALUATION)


def _open_study(options: TuneOptions, pruner, precision: str, score: str = "accuracy"):
    """The study in OUT (created, or loaded with --resume), its trials at `precision`,
    judged by validation `score` (maximised or minimised as `DIRECTIONS` says)."""
    import optuna

    path = options.out / "study.db"
    if path.exists() and not options.resume:
        raise TuneError(f"{path} already holds a study: pass --resume to continue it, or "
                        "choose another --out")
    options.out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    fresh = not path.exists() or STUDY_NAME not in optuna.get_all_study_names(storage)
    directions = [DIRECTIONS[score]] + (["minimize", "minimize"] if options.objective == "pareto"
                                        else [])
    if not fresh:
        held_study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        held = held_study.directions
        held_score = held_study.user_attrs.get("score", "accuracy")  # older studies: accuracy
        if held_score != score:
            raise TuneError(f"{path} holds a study scored by validation {held_score}, and this "
                            f"data is scored by {score}: resume it with its own data")
        if len(held) != len(directions):
            raise TuneError(f"{path} holds a study of another --objective ("
                            f"{'pareto' if len(held) > 1 else 'accuracy'}); resume it with that")
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=storage, directions=directions, load_if_exists=True,
        sampler=default_sampler(options.seed),
        pruner=pruner if pruner is not None else default_pruner())
    if fresh:
        study.set_user_attr("precision", precision)
        study.set_user_attr("score", score)
    else:  # studies written before the attribute ran their trials in fp32
        held_precision = study.user_attrs.get("precision", "fp32")
        if held_precision != precision:
            raise TuneError(f"{path} ran its trials at {held_precision}; resume it with "
                            f"--precision {held_precision} (this run resolved {precision}), "
                            "or choose another --out")
    if not fresh:  # one process runs a study: a trial still "running" was killed with it
        study_id = storage.get_study_id_from_name(STUDY_NAME)
        for trial in study.get_trials(deepcopy=False,
                                      states=(optuna.trial.TrialState.RUNNING,)):
            storage.set_trial_state_values(
                storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                optuna.trial.TrialState.FAIL)
    return study, fresh


def run_tune(options: TuneOptions, pruner=None) -> dict:
    """Run (or resume) the study of `options`; returns {"best": ..., "trials": N}.
    `pruner`: an Optuna pruner instead of the median pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = prepare(options)
    study, fresh = _open_study(options, pruner, data.train.get("precision", "fp32"), data.score)
    counter = BudgetCounter(data.base, data.task.labels)
    if fresh:
        for params in shipped_points(counter, data.max_nonzero)[:options.trials]:
            study.enqueue_trial(params)
    if all(counter.density_for({"method": m, "placement": "pfeiffer", "bottleneck": 8},
                               data.max_nonzero) is None for m in ("bottleneck", "sparse_delta")):
        raise TuneError(f"--max-nonzero {options.max_nonzero} ({data.max_nonzero:,} values) is "
                        "below what any method needs (its head and biases alone)")

    pareto = options.objective == "pareto"

    def objective(trial) -> float | tuple[float, float, float]:
        settings, share = suggest(trial)
        density = counter.density_for(settings, share * data.max_nonzero)
        if density is None:
            trial.set_user_attr("nonzero_params", None)
            raise optuna.TrialPruned("infeasible: the fixed part exceeds the budget")
        recipe = tuned_recipe(settings, density, data.train)
        trial.set_user_attr("recipe", _recipe_dict(recipe))
        trial.set_user_attr("settings", in_words(settings, density))

        evaluations = 0

        def report(step: int, metrics: dict) -> None:  # reported as evaluation 1, 2, ...
            nonlocal evaluations
            evaluations += 1
            trial.report(metrics[data.score], evaluations)
            if trial.should_prune():
                raise optuna.TrialPruned(f"stopped at evaluation {evaluations} (step {step})")

        started = time.perf_counter()
        try:  # Optuna prunes single-objective studies only
            measured = train_recipe(  # a pruned trial keeps its count too
                recipe, data, on_evaluation=None if pareto else report,
                on_counts=lambda counts: trial.set_user_attr("nonzero_params",
                                                             counts["nonzero_params"]))
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - started)
        if measured["infeasible"]:
            raise optuna.TrialPruned("infeasible: more non-zeros than --max-nonzero")
        trial.set_user_attr("step_seconds", measured["step_seconds"])
        if pareto:
            return measured["value"], measured["nonzero_params"], measured["step_seconds"]
        return measured["value"]

    def after_trial(study, trial) -> None:
        write_outputs(study, options.out)
        if options.progress:
            done = len(_finished(study))
            best = _best(study)
            value = "pruned" if not trial.values else f"{value_of(trial):.4f}"
            best_text = "none yet" if best is None else \
                f"{value_of(best):.4f} (#{best.number})"
            print(f"trial {trial.number} ({done}/{options.trials}): {value}; best {best_text}",
                  file=sys.stderr)

    remaining = options.trials - len(_finished(study))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, callbacks=[after_trial],
                       timeout=None if options.minutes is None else options.minutes * 60,
                       catch=(torch.OutOfMemoryError,))
    write_outputs(study, options.out)
    return summary(study, data)


def summary(study, data: TuneData) -> dict:
    """What the study holds, for the PoC's results.json ("search") and the command's output:
    trial counts by state, the seconds its trials took (over every resume), the validation
    rows, the budget, the score ("accuracy", or "loss" on prompt/response data), each completed
    trial's (non-zeros, validation score), the front's trial numbers, the best."""
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    best = _best(study)
    return {
        "objective": "pareto" if len(study.directions) > 1 else "accuracy",
        "score": score_of(study),
        "trials": len(trials), "completed": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
        "seconds": sum(t.user_attrs.get("seconds") or 0.0 for t in trials),
        "validation_rows": len(data.validation_rows), "max_nonzero": data.max_nonzero,
        "precision": data.train.get("precision", "fp32"),
        "precision_reason": data.precision_reason,
        "points": [[t.user_attrs["nonzero_params"], value_of(t)] for t in trials
                   if t.state.name == "COMPLETE"],
        "front": [t.number for t in front(study)],
        "best": None if best is None else {
            "number": best.number, "value": value_of(best),
            "nonzero_params": best.user_attrs["nonzero_params"],
            "description": best.user_attrs["recipe"]["description"],
            "settings": best.user_attrs["settings"],
            "recipe": best.user_attrs["recipe"]},
    }


def _finished(study) -> list:
    """The trials that count towards --trials: completed or pruned (not failed)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def score_of(study) -> str:
    """What a study's trials are judged by: "accuracy" (studies before the attribute too), or
    "loss" (the validation response loss, prompt/response data)."""
    return study.user_attrs.get("score", "accuracy")


def value_of(trial) -> float | None:
    """A trial's validation score (its first objective value), None if it has none."""
    return trial.values[0] if trial.values else None


def front(study) -> list:
    """The completed trials no other completed trial beats on every objective (for an
    accuracy study, the best one)."""
    best = _best(study)
    if len(study.directions) == 1:
        return [] if best is None else [best]
    return sorted(study.best_trials, key=lambda t: t.number)


def _best(study):
    """The best-scoring completed trial; among equals the one with the fewest trained
    non-zeros (the cheaper adapter to store and serve), then the lowest number."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = -1 if study.directions[0].name == "MINIMIZE" else 1
    return max(complete, key=lambda t: (sign * value_of(t), -t.user_attrs["nonzero_params"],
                                        -t.number)) if complete else None


def _recipe_dict(recipe: Recipe) -> dict:
    return {"name": recipe.name, "description": recipe.description, "kind": recipe.kind,
            "adapter": dict(recipe.adapter), "train": dict(recipe.train)}


def _csv(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def write_outputs(study, out: Path) -> None:
    """trials.csv, best.yaml (when a trial completed), pareto.csv (a pareto study) and
    search.png, atomically."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for t in trials for name in t.params})

    def blank(value, digits: int | None = None) -> object:
        return "" if value is None else (round(value, digits) if digits else value)

    rows = [["number", "state", *names, "nonzero_params", "value", "step_seconds", "seconds"]]
    rows += [[t.number, t.state.name, *[t.params.get(n, "") for n in names],
              blank(t.user_attrs.get("nonzero_params")), blank(value_of(t)),
              blank(t.user_attrs.get("step_seconds"), 4), blank(t.user_attrs.get("seconds"), 2)]
             for t in trials]
    atomic.write_file(out / "trials.csv", _csv(rows))
    on_front = front(study)
    if len(study.directions) > 1:
        atomic.write_file(out / "pareto.csv", _csv(
            [["number", "value", "nonzero_params", "step_seconds", "settings"]]
            + [[t.number, value_of(t), t.user_attrs["nonzero_params"],
                round(t.user_attrs["step_seconds"], 4), t.user_attrs["settings"]]
               for t in on_front]))
    best = _best(study)
    if best is not None:
        header = (f"# spadapt tune: trial {best.number} of {len(trials)}, validation "
                  f"{score_of(study)} "
                  f"{value_of(best):.4f}, {best.user_attrs.get('nonzero_params'):,} "
                  "non-zeros\n")
        text = header + yaml.safe_dump(best.user_attrs["recipe"], sort_keys=False)
        atomic.write_file(out / BEST_FILE, text.encode())
    atomic.write_file(out / "search.png", _plot(trials, on_front, best, score_of(study)))


def _plot(trials: list, on_front: list, best, score: str = "accuracy") -> bytes:
    """Validation score (`score`) against non-zeros of each completed trial, and of each pruned one
    at its last evaluation (hollow); the front (a pareto study) ringed, the best starred."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..report.plots import set_nonzero_axis

    def point(t) -> tuple[int, float]:
        return t.user_attrs["nonzero_params"], value_of(t)

    shown = [t for t in trials if value_of(t) is not None and
             t.user_attrs.get("nonzero_params")]
    done = [t for t in shown if t.state.name == "COMPLETE"]
    stopped = [t for t in shown if t.state.name == "PRUNED"]
    figure = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    if done:
        axes.scatter(*zip(*map(point, done), strict=True), label="trial")
    if stopped:
        axes.scatter(*zip(*map(point, stopped), strict=True), facecolors="none",
                     edgecolors="grey", label="stopped early (its last score)")
    if shown:
        set_nonzero_axis(axes, [point(t)[0] for t in shown])
    if len(on_front) > 1:
        axes.scatter(*zip(*map(point, on_front), strict=True), s=120, facecolors="none",
                     edgecolors="black", label="Pareto front")
    if best is not None:
        axes.scatter(*point(best), marker="*", s=200, color="tab:red",
                     label=f"best (#{best.number})")
    axes.set_xlabel("trained non-zero values")
    axes.set_ylabel(f"validation {score}")
    if shown:
        axes.legend(loc="best")
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
