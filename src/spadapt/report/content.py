"""What the report says, as plain unescaped text, shared by the Markdown and HTML renderers:
the title, the results table, which plots it shows, the search (poc --tune), a generative run's
answers side by side, the data-quality section and the footer.

Everything here is plain text; each renderer escapes it for its format. The summary
sentences, which need emphasis inside them, live in summary.py; the plots are drawn by
plots.py (the only module here that imports matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import fmt
from .i18n import strings
from .results import Method, Results
from .summary import recommend

REJECTED_SHOWN = 10  # rejected rows listed in the report (results.json keeps up to 100)

# File names of the plots, in report order (the Markdown links to plots/<name>).
PLOT_FILES = {"accuracy": "accuracy_vs_nonzero.png", "curves": "training_curves.png",
              "confusion": "confusion_matrix.png", "spread": "kept_values_by_layer.png",
              "search": "search.png"}


@dataclass
class Row:
    name: str
    description: str | None
    recommended: bool
    error: str | None  # a failed method: the cells are empty and the error is shown instead
    cells: list[str]  # the columns after the method name


@dataclass
class Table:
    header: list[str]
    rows: list[Row]
    note: str


@dataclass
class Answers:
    """One sample prompt with its reference and every method's answer (plain text)."""

    prompt: str
    reference: str
    answers: list[tuple[str, str]]  # (method name, its answer or the "empty" note)


@dataclass
class DataQuality:
    rows: str  # rows used for training and evaluation
    rejected_count: str
    rejected_intro: str | None  # the sentence before the rejected rows listed below
    rejected: list[str]  # "file:line — reason"
    labels: str
    truncated: str | None = None  # generate: prompts cut to fit the context


def title(results: Results, lang: str) -> str:
    return strings(lang, results.metric)["title"].format(dataset=results.dataset_name,
                                         model=results.base_model_name)


def plot_names(results: Results) -> list[str]:
    """Which plots the report shows for these results (PLOT_FILES keys), in report order."""
    names = []
    if any(m.ok and m.nonzero_params > 0 for m in results.methods):
        names.append("accuracy")
    if any(m.ok and m.history for m in results.methods):
        names.append("curves")
    rec = recommend(results)
    if rec is not None and rec.confusion_matrix is not None and results.labels:
        names.append("confusion")
    if spread_method(results) is not None:
        names.append("spread")
    if results.search is not None and results.search.points:
        names.append("search")
    return names


def spread_method(results: Results) -> Method | None:
    """The method whose kept values the report maps over the layers: the tuned one when the
    run searched, else the recommended one (if its results carry a spread)."""
    by_name = {m.name: m for m in results.methods if m.ok}
    for method in (by_name.get("tuned") if results.search is not None else None,
                   recommend(results)):
        if method is not None and method.spread is not None and method.spread.layers:
            return method
    return None


def search_lines(results: Results, lang: str) -> list[str]:
    """The paragraphs of the search section (empty when the run did not search)."""
    search = results.search
    if search is None:
        return []
    s = strings(lang, results.metric)
    lines = [s["search_ran"].format(
        trials=search.trials, completed=search.completed, pruned=search.pruned,
        failed=search.failed, time=fmt.duration(search.seconds, s),
        rows=f"{search.validation_rows:,}")]
    if search.best_number is None:
        lines.append(s["search_none"])
    elif search.score == "loss":
        lines.append(s["search_best_loss"].format(
            number=search.best_number, settings=search.best_settings,
            loss=f"{search.best_value:.3f}", nonzero=fmt.count(search.best_nonzero)))
    else:
        lines.append(s["search_best"].format(
            number=search.best_number, settings=search.best_settings,
            accuracy=fmt.percent(search.best_value), nonzero=fmt.count(search.best_nonzero)))
    return lines


def table(results: Results, lang: str) -> Table:
    s = strings(lang, results.metric)
    rec = recommend(results)
    generate = results.task == "generate"
    # a generative run shows both answer scores, the one the recommendation uses first
    scores = (("exact_match", "col_exact"), ("rouge_l", "col_rouge"))
    if results.metric == "rouge_l":
        scores = scores[::-1]
    quality = ([key for _, key in scores] + ["col_loss", "col_ppl"] if generate
               else ["col_accuracy", "col_f1"])
    header = [s[k] for k in ("col_method", *quality, "col_trainable", "col_nonzero", "col_size",
                             "col_time", "col_step", "col_memory")]
    rows = []
    for m in results.methods:
        if generate:
            values = [fmt.percent(getattr(m, name)) for name, _ in scores] + [
                fmt.sig(m.eval_loss), fmt.sig(m.perplexity)] if m.ok else []
        else:
            values = [fmt.percent(m.accuracy), fmt.percent(m.macro_f1)]
        costs = [fmt.count(m.trainable_params), fmt.count(m.nonzero_params),
                 fmt.size(m.adapter_bytes), fmt.duration(m.train_seconds, s),
                 fmt.step(m.step_seconds_median, s), fmt.size(m.peak_memory_bytes)]
        if not m.trained:  # the base as it is: nothing stored, nothing trained
            costs = [*costs[:2], fmt.DASH, s["not_trained"], fmt.DASH, fmt.DASH]
        cells = [] if not m.ok else [*values, *costs]
        rows.append(Row(name=m.name, description=m.description, recommended=m is rec,
                        error=None if m.ok else s["failed"].format(error=m.error),
                        cells=cells))
    return Table(header=header, rows=rows, note=s["table_note"])


def data_quality(results: Results, lang: str) -> DataQuality:
    s = strings(lang, results.metric)
    intro = None
    rejected = []
    if results.rejected_rows == 0:
        count = s["rejected_none"]
    else:
        count = s["rejected_count"].format(count=f"{results.rejected_rows:,}")
        if results.rejected:
            shown = results.rejected[:REJECTED_SHOWN]
            intro = s["rejected_first"].format(shown=len(shown))
            rejected = [f"{r.file}:{r.line if r.line is not None else '?'} — {r.reason}"
                        for r in shown]
        else:
            intro = s["rejected_no_detail"]
    if results.labels:
        labels = s["labels"].format(count=len(results.labels), labels=", ".join(results.labels))
    else:
        labels = s["labels_none"].format(task=results.task)
    rows = s["rows_used"].format(train=f"{results.train_rows:,}", eval=f"{results.eval_rows:,}")
    truncated = None
    if results.max_length is not None:
        truncated = (s["truncated"] if results.truncated_prompts else s["truncated_none"]).format(
            count=f"{results.truncated_prompts:,}", max_length=results.max_length)
    return DataQuality(rows=rows, rejected_count=count, rejected_intro=intro,
                       rejected=rejected, labels=labels, truncated=truncated)


def answers(results: Results, lang: str) -> list[Answers]:
    """The sample prompts with each method's answer, in method order (empty unless the run
    generated answers)."""
    s = strings(lang, results.metric)
    with_answers = [m for m in results.methods if m.ok and m.answers]
    return [Answers(prompt=sample.prompt, reference=sample.reference,
                    answers=[(m.name, m.answers[i].strip() or s["a_empty"])
                             for m in with_answers])
            for i, sample in enumerate(results.samples) if with_answers]


def budget_text(results: Results, lang: str) -> str:
    """The budget's name and, when results.json records it, the rule every method ran under
    (with bf16 autocast named when the run used it)."""
    s = strings(lang, results.metric)
    name = results.budget or s["unknown"]
    rule = results.budget_rule
    if not rule:
        return name
    values = {"name": name, "train": fmt.count(results.train_rows),
              "batch": rule.get("batch_size", "?")}
    precision = s["budget_bf16"] if rule.get("precision") == "bf16" else ""
    if rule.get("max_steps") and not rule.get("early_stopping_patience"):
        return s["budget_steps"].format(steps=rule.get("steps", rule["max_steps"]),
                                        **values) + precision
    patience = rule.get("early_stopping_patience")
    stop = s["budget_stop"].format(patience=patience) if patience else ""
    return s["budget_epochs"].format(epochs=rule.get("epochs", "?"), stop=stop,
                                     **values) + precision


def footer(results: Results, lang: str) -> list[tuple[str, str]]:
    s = strings(lang, results.metric)
    unknown = s["unknown"]
    model = results.base_model_name
    if results.base_model_parameters is not None:
        params = s["params_of"].format(params=fmt.count(results.base_model_parameters))
        model = f"{model} ({params})"
    machine = unknown
    if results.machine:
        mc = results.machine
        machine = s["machine"].format(cpu=mc.get("cpu") or unknown,
                                      threads=mc.get("threads") or unknown,
                                      gpu=mc.get("gpu") or s["no_gpu"],
                                      torch=mc.get("torch") or unknown)

    def value(v: object) -> str:
        return unknown if v is None else str(v)

    return [(s["f_base_model"], model), (s["f_task"], results.task),
            (s["f_budget"], budget_text(results, lang)), (s["f_seed"], value(results.seed)),
            (s["f_machine"], machine), (s["f_version"], value(results.spadapt_version)),
            (s["f_created"], value(results.created))]
