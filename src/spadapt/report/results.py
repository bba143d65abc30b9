"""Reading and checking a PoC run's `results.json` into small typed records.

`load_results(run_dir)` reads `RUN_DIR/results.json`; `parse_results(data, source)` checks a
dict already in memory. Both return a `Results`, or raise `ReportError` naming the file and
the field (`methods[2].accuracy`) that is wrong. Fields the contract marks optional (task,
machine, history, confusion matrix, rejected rows, description, throughput) may be missing;
a method with an `error` needs no metrics, and one with `trained: false` (the base as it is)
no step time or memory. A generative run (`task: "generate"`) names its `metric`, the one
`accuracy` repeats, and carries sample prompts with each method's answers. Rendering lives
elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpadaptError
from ..spread import Spread

RESULTS_FILE = "results.json"
SEARCH_SCORES = ("accuracy", "loss")  # what a search's trials may be scored by


class ReportError(SpadaptError):
    """results.json is missing or malformed, or the report was asked for in an unknown language."""


@dataclass
class HistoryPoint:
    epoch: int
    step: int
    train_loss: float | None
    eval_loss: float | None
    eval_accuracy: float | None


@dataclass
class Method:
    name: str
    description: str | None = None
    error: str | None = None  # set when the method failed; the metrics below are then None
    accuracy: float | None = None  # fraction in [0, 1]
    macro_f1: float | None = None
    base_params: int | None = None
    trainable_params: int | None = None
    nonzero_params: int | None = None  # what is stored: the budget the recommendation minimises
    adapter_bytes: int | None = None
    train_seconds: float | None = None
    step_seconds_median: float | None = None
    examples_per_second: float | None = None
    peak_memory_bytes: int | None = None
    adapter_dir: str | None = None
    history: list[HistoryPoint] = field(default_factory=list)
    confusion_matrix: list[list[int]] | None = None  # rows = true label, cols = predicted
    spread: Spread | None = None  # kept values by layer and module (spadapt methods)
    trained: bool = True  # False for the base as it is: no cost, never the recommendation
    eval_loss: float | None = None  # generate: response-token loss (nats)
    perplexity: float | None = None
    exact_match: float | None = None  # generate: normalised exact match, a fraction
    rouge_l: float | None = None  # generate: mean ROUGE-L F1
    answers: list[str] = field(default_factory=list)  # generate: one per Results.samples

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Rejected:
    file: str
    line: int | None
    reason: str


@dataclass
class Sample:
    """An evaluation row whose answers the report shows side by side (generate)."""

    prompt: str
    reference: str


@dataclass
class Search:
    """What `spadapt poc --tune` searched before the comparison (results.json "search")."""

    trials: int  # trials the study holds
    completed: int
    pruned: int  # stopped early by the pruner, or infeasible
    failed: int
    seconds: float  # time its trials took
    validation_rows: int  # training rows held out to score the trials
    points: list[tuple[int, float]]  # (non-zeros, validation score) of completed trials
    best_number: int | None = None  # the best trial; None when none completed
    best_value: float | None = None  # its validation score
    best_nonzero: int | None = None
    best_settings: str | None = None  # its configuration in words
    score: str = "accuracy"  # what the scores are: "accuracy", or "loss" (the validation
    #                          response loss of prompt/response data, lower is better)


@dataclass
class Results:
    dataset_name: str
    train_rows: int
    eval_rows: int
    labels: list[str]
    rejected_rows: int
    rejected: list[Rejected]
    base_model_name: str
    base_model_parameters: int | None
    methods: list[Method]
    task: str = "classification"
    budget: str | None = None
    budget_rule: dict[str, Any] | None = None  # steps, epochs, batch_size, early stopping
    seed: int | None = None
    created: str | None = None
    spadapt_version: str | None = None
    machine: dict[str, Any] | None = None
    search: Search | None = None  # present when the run searched first (poc --tune)
    metric: str = "accuracy"  # what `Method.accuracy` holds: accuracy, exact_match or rouge_l
    metric_reason: str | None = None  # generate: option | short_answers | long_answers
    samples: list[Sample] = field(default_factory=list)  # generate: prompts answered by all
    max_length: int | None = None  # generate: tokens of prompt + response kept
    truncated_prompts: int = 0  # generate: prompts cut from the left to fit max_length


# Metrics every successful method must carry (the results.json contract).
_REQUIRED_METRICS = ("accuracy", "macro_f1", "trainable_params", "nonzero_params",
                     "adapter_bytes", "train_seconds", "step_seconds_median",
                     "peak_memory_bytes")
_INT_FIELDS = {"base_params", "trainable_params", "nonzero_params", "adapter_bytes",
               "peak_memory_bytes"}
_TRAINING_COSTS = ("step_seconds_median", "peak_memory_bytes")  # none for an untrained method
_METRICS = ("accuracy", "exact_match", "rouge_l")  # what results.json's "metric" may name
_GENERATE_METRICS = ("eval_loss", "perplexity", "exact_match", "rouge_l")


class _Reader:
    """Typed access to a JSON object that names `source` and the field path in each error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ReportError:
        return ReportError(f"{self.source}: {where} {what}; fix the file or re-run `spadapt poc`")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a JSON object, got {type(value).__name__}")
        return value

    def get(self, obj: dict[str, Any], key: str, where: str, kind: str,
            required: bool = True) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(path, "is missing")
            return None
        value = obj[key]
        if kind == "str":
            if not isinstance(value, str):
                raise self.fail(path, f"must be a string, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(path, f"must be finite, got {value!r}")
        if kind == "int":
            if value != int(value):
                raise self.fail(path, f"must be a whole number, got {value!r}")
            return int(value)
        return float(value)


def parse_results(data: Any, source: str = RESULTS_FILE) -> Results:
    """Check a results.json dict against the contract and return it as a `Results`."""
    r = _Reader(source)
    top = r.obj(data, "the top level")
    dataset = r.obj(top.get("dataset"), "dataset")
    base = r.obj(top.get("base_model"), "base_model")
    labels = dataset.get("labels")
    if not isinstance(labels, list):
        raise r.fail("dataset.labels", "must be a list of label names")
    raw_methods = top.get("methods")
    if not isinstance(raw_methods, list) or not raw_methods:
        raise r.fail("methods", "must be a non-empty list")
    samples = _parse_samples(r, top.get("samples"))
    methods = [_parse_method(r, m, f"methods[{i}]", len(labels), len(samples))
               for i, m in enumerate(raw_methods)]
    metric = r.get(top, "metric", "", "str", required=False) or "accuracy"
    if metric not in _METRICS:
        raise r.fail("metric", f"must be one of {list(_METRICS)}, got {metric!r}")
    machine = top.get("machine")
    if machine is not None:
        machine = r.obj(machine, "machine")
    seed = r.get(top, "seed", "", "int", required=False)
    return Results(
        dataset_name=r.get(dataset, "name", "dataset", "str"),
        train_rows=r.get(dataset, "train_rows", "dataset", "int"),
        eval_rows=r.get(dataset, "eval_rows", "dataset", "int"),
        labels=[str(label) for label in labels],
        rejected_rows=r.get(dataset, "rejected_rows", "dataset", "int", required=False) or 0,
        rejected=_parse_rejected(r, dataset.get("rejected")),
        base_model_name=r.get(base, "name", "base_model", "str"),
        base_model_parameters=r.get(base, "parameters", "base_model", "int", required=False),
        methods=methods,
        task=r.get(top, "task", "", "str", required=False) or "classification",
        budget=_text(top.get("budget")),
        budget_rule=r.obj(top["budget_rule"], "budget_rule") if top.get("budget_rule")
        is not None else None,
        seed=seed,
        created=_text(top.get("created")),
        spadapt_version=_text(top.get("spadapt_version")),
        machine=machine,
        search=None if top.get("search") is None else _parse_search(r, top["search"]),
        metric=metric,
        metric_reason=_text(top.get("metric_reason")),
        samples=samples,
        max_length=r.get(dataset, "max_length", "dataset", "int", required=False),
        truncated_prompts=r.get(dataset, "truncated_prompts", "dataset", "int",
                                required=False) or 0,
    )


def load_results(run_dir: Path) -> Results:
    """Read and check `run_dir/results.json`; errors name that file."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: not found; a PoC run writes it (`spadapt poc ... --out "
                          f"{Path(run_dir)}`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from None
    return parse_results(data, str(path))


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_method(r: _Reader, raw: Any, where: str, n_labels: int, n_samples: int) -> Method:
    obj = r.obj(raw, where)
    error = obj.get("error")
    trained = obj.get("trained", True)
    if not isinstance(trained, bool):
        raise r.fail(f"{where}.trained", f"must be true or false, got {trained!r}")
    method = Method(name=r.get(obj, "name", where, "str"),
                    description=r.get(obj, "description", where, "str", required=False),
                    error=None if error in (None, "") else str(error),
                    adapter_dir=_text(obj.get("adapter_dir")), trained=trained)
    generate = obj.get("task") == "generate"
    for key in (*_REQUIRED_METRICS, "base_params", "examples_per_second", *_GENERATE_METRICS):
        kind = "int" if key in _INT_FIELDS else "float"
        required = method.ok and (key in _REQUIRED_METRICS or generate and
                                  key in _GENERATE_METRICS)
        if key in _TRAINING_COSTS and not trained:
            required = False
        setattr(method, key, r.get(obj, key, where, kind, required=required))
    if not method.ok:
        return method
    answers = obj.get("answers") or []
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers) or \
            (answers and len(answers) != n_samples):
        raise r.fail(f"{where}.answers", f"must be a list of {n_samples} strings (one per "
                     "samples entry)")
    method.answers = answers
    history = obj.get("history") or []
    if not isinstance(history, list):
        raise r.fail(f"{where}.history", "must be a list")
    for j, point in enumerate(history):
        at = f"{where}.history[{j}]"
        point = r.obj(point, at)
        method.history.append(HistoryPoint(
            epoch=_default(r.get(point, "epoch", at, "int", required=False), 0),
            step=_default(r.get(point, "step", at, "int", required=False), j),
            train_loss=r.get(point, "train_loss", at, "float", required=False),
            eval_loss=r.get(point, "eval_loss", at, "float", required=False),
            eval_accuracy=r.get(point, "eval_accuracy", at, "float", required=False)))
    cm = obj.get("confusion_matrix")
    if cm is not None:
        at = f"{where}.confusion_matrix"
        ok = (isinstance(cm, list) and len(cm) == n_labels
              and all(isinstance(row, list) and len(row) == n_labels for row in cm)
              and all(isinstance(v, int) and not isinstance(v, bool) for row in cm for v in row))
        if not ok:
            raise r.fail(at, f"must be a {n_labels}×{n_labels} list of whole numbers "
                         "(one row and column per dataset.labels entry)")
        method.confusion_matrix = cm
    if obj.get("spread") is not None:
        method.spread = _parse_spread(r, obj["spread"], f"{where}.spread")
    return method


def _parse_spread(r: _Reader, raw: Any, where: str) -> Spread:
    obj = r.obj(raw, where)
    layers, modules, counts = obj.get("layers"), obj.get("modules"), obj.get("counts")
    ok = (isinstance(layers, list) and isinstance(modules, list) and isinstance(counts, list)
          and len(counts) == len(layers)
          and all(isinstance(row, list) and len(row) == len(modules) for row in counts)
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                  for row in counts for v in row))
    if not ok:
        raise r.fail(where, "must hold layers, modules and a layers × modules list of counts")
    return Spread(layers=[str(x) for x in layers], modules=[str(x) for x in modules],
                  counts=counts)


def _parse_samples(r: _Reader, raw: Any) -> list[Sample]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise r.fail("samples", "must be a list")
    samples = []
    for i, item in enumerate(raw):
        at = f"samples[{i}]"
        item = r.obj(item, at)
        samples.append(Sample(prompt=r.get(item, "prompt", at, "str"),
                              reference=r.get(item, "reference", at, "str")))
    return samples


def _parse_rejected(r: _Reader, raw: Any) -> list[Rejected]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise r.fail("dataset.rejected", "must be a list")
    rows = []
    for i, item in enumerate(raw):
        at = f"dataset.rejected[{i}]"
        item = r.obj(item, at)
        rows.append(Rejected(file=str(item.get("file", "")),
                             line=r.get(item, "line", at, "int", required=False),
                             reason=str(item.get("reason", ""))))
    return rows


def _parse_search(r: _Reader, raw: Any) -> Search:
    obj = r.obj(raw, "search")
    points = obj.get("points") or []
    if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 for p in points):
        raise r.fail("search.points", "must be a list of [non-zeros, score] pairs")
    score = obj.get("score", "accuracy")  # runs before the field: accuracy
    if score not in SEARCH_SCORES:
        raise r.fail("search.score", f"must be one of {list(SEARCH_SCORES)}, got {score!r}")
    search = Search(
        **{key: r.get(obj, key, "search", "int") for key in
           ("trials", "completed", "pruned", "failed", "validation_rows")},
        seconds=r.get(obj, "seconds", "search", "float"),
        points=[(r.get({"n": p[0]}, "n", f"search.points[{i}]", "int"),
                 r.get({"v": p[1]}, "v", f"search.points[{i}]", "float"))
                for i, p in enumerate(points)], score=score)
    best = obj.get("best")
    if best is not None:
        best = r.obj(best, "search.best")
        search.best_number = r.get(best, "number", "search.best", "int")
        search.best_value = r.get(best, "value", "search.best", "float")
        search.best_nonzero = r.get(best, "nonzero_params", "search.best", "int")
        search.best_settings = r.get(best, "settings", "search.best", "str")
    return search
