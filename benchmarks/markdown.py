"""Regenerates BENCHMARKS.md from benchmarks/results/*.json (tables, target verdicts, plots).

Two blocks of the page are generated: the Targets table, between
`<!-- generated:targets:begin -->` and `<!-- generated:targets:end -->`, which the page opens
with (a page without that block gets it after its title), and every detailed table, between
`<!-- generated:begin -->` and `<!-- generated:end -->` (appended when missing). The
hand-written text around them (how to reproduce, the findings, the serving load test) is
kept. Each section appears when its result file exists. Plots are PNG files beside the
results; sizes are formatted by `spadapt.report.fmt.size`.

    python -m benchmarks markdown
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from spadapt import atomic
from spadapt.report import fmt

from . import decoder_markdown, poc_markdown, settings_markdown
from .common import RESULTS_DIR, paired_difference
from .generate import MATCHED
from .tables import machine_line, range_text, verdict

PAGE = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- generated:begin -->", "<!-- generated:end -->"  # the detailed tables
TARGETS_BEGIN, TARGETS_END = "<!-- generated:targets:begin -->", "<!-- generated:targets:end -->"


def load_result(name: str) -> dict | None:
    """benchmarks/results/<name>.json, or None when that part has not run."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _bar_plot(path: Path, labels: list[str], values: list[float], xlabel: str,
              line: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 0.35 * len(labels) + 1.2))
    axes.barh(labels[::-1], values[::-1], color="#4c78a8")
    if line is not None:
        axes.axvline(line, color="#e45756", linestyle="--", linewidth=1)
    axes.set_xlabel(xlabel)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def step_section(result: dict) -> list[str]:
    competitors = result["competitors"]
    lines = ["## Training step time and peak memory", "",
             f"Batch {result['batch_size']} × {result['sequence_length']} tokens, AdamW, "
             f"{result['rounds']} interleaved rounds of {result['warmup_steps']} warm-up + "
             f"{result['timed_steps_per_round']} timed steps; median (min–max) over rounds; "
             "ratios round by round. Memory: a fresh process per method, peak resident set over "
             f"{result['memory_steps']} steps; working set = peak − resident before the first "
             f"step. {machine_line(result)}.", "",
             "| method | trainable | step s | × floor | × LoRA | peak RSS | × floor "
             "| working set | × floor |", "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in competitors.items():
        memory = entry["memory"]
        lines.append(
            f"| {name}: {entry['description']} | {entry['trainable_parameters']:,} "
            f"| {range_text(entry['step_seconds'])} | {range_text(entry['ratio_to_floor'], 2)} "
            f"| {range_text(entry['ratio_to_lora'], 2) if 'ratio_to_lora' in entry else '–'} "
            f"| {fmt.size(memory['peak_bytes'], digits=4)} | {memory.get('ratio_to_floor', 1):.2f} "
            f"| {fmt.size(memory['working_set_bytes'], digits=4)} "
            f"| {memory.get('working_set_ratio_to_floor', 1):.2f} |")
    names = list(competitors)
    _bar_plot(RESULTS_DIR / "train_step.png", names,
              [competitors[n]["ratio_to_floor"]["median"] for n in names],
              "training step time / frozen-base floor (median of rounds)", line=1.0)
    lines += ["", "![step time against the floor](benchmarks/results/train_step.png)", ""]
    return lines


def storage_section(result: dict) -> list[str]:
    lines = ["## Storage", "",
             "Random non-zero values in every trained tensor, saved the library's way "
             "(float32 values). `× bound`: the weights file over the information bound of its "
             "manifest (values + log2 C(n, k) bits of positions per tensor). `× SHiRA`: the "
             "weights file over PEFT SHiRA's file for the same number of trained values. "
             f"{machine_line(result)}.", "",
             "| method | library | trained values | weights file | bytes / value | × bound "
             "| × SHiRA |", "|---|---|---|---|---|---|---|"]
    for name, entry in result["methods"].items():
        bound = f"{entry['ratio_to_bound']:.3f}" if "ratio_to_bound" in entry else "–"
        lines.append(f"| {name} | {entry['library']} | {entry['trained_values']:,} "
                     f"| {entry['weights_file_bytes']:,} B | {entry['bytes_per_value']:.2f} "
                     f"| {bound} | {entry['ratio_to_shira_at_equal_values']:.3f} |")
    return lines + [""]


def inference_section(result: dict) -> list[str]:
    lines = ["## Inference", "",
             f"One eval-mode forward of {result['batch_size']} × {result['sequence_length']} "
             f"tokens, {result['rounds']} interleaved rounds. {machine_line(result)}.", "",
             "| model | seconds per batch | × base |", "|---|---|---|"]
    for name, entry in result["latency"].items():
        label = f"{name}: {entry['description']}" if "description" in entry else name
        lines.append(f"| {label} | {range_text(entry['seconds'], 4)} "
                     f"| {range_text(entry['ratio_to_base'], 3)} |")
    lines += ["", "| adapters | single-adapter rows/s | mixed (8 adapters) rows/s "
              "| mixed / single |", "|---|---|---|---|"]
    for name, entry in result["mixed_batch"].items():
        lines.append(f"| {name} | {entry['single_rows_per_second']:.1f} "
                     f"| {entry['mixed_rows_per_second']:.1f} "
                     f"| {range_text(entry['mixed_over_single_throughput'], 3)} |")
    swap = result["hot_swap"]
    lines += ["", f"Hot-swap ({swap['adapter']}): `set_adapter` "
              f"{swap['set_adapter_seconds']['median'] * 1e3:.3f} ms median; loading an "
              f"adapter directory into the running model "
              f"{swap['load_adapter_from_disk_seconds']['median'] * 1e3:.1f} ms; loading the "
              f"base model {swap['load_base_model_seconds']['median'] * 1e3:.0f} ms.", ""]
    return lines


def _seeds(count: int) -> str:
    return f"{count} seed" + ("" if count == 1 else "s")


def _longer_accuracy_results() -> list[dict]:
    """The longer-training accuracy_*.json results beside the main accuracy.json."""
    return [load_result(path.stem) for path in sorted(RESULTS_DIR.glob("accuracy_*.json"))]


def _sweep_results() -> list[dict]:
    """The learning-rate sweeps, sweep_*.json."""
    return [load_result(path.stem) for path in sorted(RESULTS_DIR.glob("sweep_*.json"))]


def chosen_runs(result: dict) -> dict[str, dict[str, str]]:
    """Per dataset, per method: the swept run name (`<method>@<scale>x`, or
    `<method>+<configuration>@<scale>x` for another configuration of the method at the same
    budget) with the best seed-0 validation accuracy, among the methods whose runs all have
    one; a tie goes to the scale nearest the recipe's own rate, then to the method's own
    configuration, then to the name that sorts first. Warm-up and head-rate variants are not
    candidates: their own rule (`settings_markdown`) says whether one replaces the recipe's."""
    from .accuracy import method_of, sweep_base

    candidates: dict[str, dict[str, list[tuple[float | None, str]]]] = {}
    for key, run in result["runs"].items():
        dataset, name, seed = key.split("/")
        if seed == "0" and "@" in name and not settings_markdown.SETTING.search(name):
            method = method_of(sweep_base(name)[0])
            candidates.setdefault(dataset, {}).setdefault(method, []).append(
                (run.get("validation_accuracy"), name))

    def preference(candidate: tuple[float, str]) -> tuple:
        validation, name = candidate
        configuration, scale = sweep_base(name)
        return (-validation, abs(math.log(scale)), configuration != method_of(configuration),
                name)

    return {dataset: {method: min(options, key=preference)[1]
                      for method, options in methods.items()
                      if all(validation is not None for validation, _ in options)}
            for dataset, methods in candidates.items()}


def sweep_section(result: dict) -> list[str]:
    from .accuracy import method_of, sweep_base

    settings = result["settings"]
    chosen = chosen_runs(result)
    lines = [f"## Learning-rate and configuration sweep, {training_steps(result)} steps", "",
             f"MiniLM, {settings['train_rows']} training rows, {settings['epochs']} epoch(s), "
             f"batch {settings['batch_size']} × {settings['sequence_length']} tokens; each "
             "method at multiples of its recipe's learning rate (a head rate set by the recipe "
             "stays), and other configurations of a method at the same budget "
             "(`sparse+houlsby`: placement, density, scorer) compete with it. "
             f"Validation: {settings['validation_rows']} rows of the training split "
             "that are not training rows, seed 0; per method, the run with the best validation "
             "accuracy is chosen (✓; a tie goes to the recipe's rate, then to the recipe's "
             "configuration, then to name order) and its evaluation accuracy "
             f"({settings['eval_rows']} evaluation rows, never used to choose) is the mean ± "
             "std over the seeds it ran. "
             f"{machine_line(result)}.", "",
             "| dataset | method | learning rate | validation accuracy (seed 0) | "
             "evaluation accuracy | chosen |", "|---|---|---|---|---|---|"]
    runs = result["runs"]
    for dataset, table in result["summary"].items():
        names = sorted(table, key=sweep_base)
        for name in names:
            method = settings["methods"][name]
            validation = runs.get(f"{dataset}/{name}/0", {}).get("validation_accuracy")
            entry = table[name]
            configuration, scale = sweep_base(name)
            mark = "✓" if chosen.get(dataset, {}).get(method_of(configuration)) == name else ""
            described = method["description"].rsplit(", lr ", 1)[0]  # the rate has a column
            lines.append(f"| {dataset} | {configuration}: {described} | "
                         f"{method['learning_rate']:.2g} ({scale:g} ×) | "
                         + (f"{validation:.4f}" if validation is not None else "–")
                         + f" | {entry['mean']:.4f} ± {entry['std']:.4f} ({entry['seeds']}) | "
                         f"{mark} |")
    return lines + [""]


def training_steps(result: dict) -> int:
    """Optimizer steps of the runs in an accuracy result (their median)."""
    return int(statistics.median(run["steps"] for run in result["runs"].values()))


def accuracy_section(result: dict, main: bool = True) -> list[str]:
    settings = result["settings"]
    summary = result["summary"]
    values = {}
    for key, run in result["runs"].items():
        dataset, name, _ = key.split("/")
        values.setdefault((dataset, name), []).append(run["nonzero_values"])
    title = "## Accuracy at an equal budget" + (
        "" if main else f", longer training ({training_steps(result)} steps)")
    lines = [title, "",
             f"MiniLM, {settings['train_rows']} training rows (fixed-seed stratified subset), "
             f"{settings['epochs']} epoch(s), batch {settings['batch_size']} × "
             f"{settings['sequence_length']} tokens, {settings['eval_rows']} evaluation rows; "
             f"budget {settings['budget_fraction']:.1%} of the base's parameters as trained "
             f"non-zero values (head on top). Mean ± std over seeds. {machine_line(result)}.", ""]
    datasets = list(summary)
    if main:
        _accuracy_plot(summary, values, settings["methods"])
    header = "| method | group | non-zero values | " + " | ".join(datasets) + " |"
    lines += [header, "|---|---|---|" + "---|" * len(datasets)]
    for name, method in settings["methods"].items():
        if not any((dataset, name) in values for dataset in datasets):
            continue  # described by a process whose runs were dropped or not made
        cells = []
        for dataset in datasets:
            entry = summary[dataset].get(name)
            cells.append(f"{entry['mean']:.4f} ± {entry['std']:.4f} ({entry['seeds']})"
                         if entry else "–")
        counts = [v for d in datasets for v in values.get((d, name), [])]
        count = f"{int(statistics.median(counts)):,}" if counts else "–"
        lines.append(f"| {name}: {method['description']} | {method['group']} | {count} | "
                     + " | ".join(cells) + " |")
    if main:
        lines += ["", "![accuracy against trained non-zero values]"
                  "(benchmarks/results/accuracy.png)"]
    return lines + [""]


def _points(difference: tuple[float, float, int] | None) -> str:
    if difference is None:
        return "–"
    mean, error, seeds = difference
    spread = "" if math.isnan(error) else f" ± {100 * error:.2f}"
    return f"{100 * mean:+.2f}{spread} ({seeds})"


SPARSE_RECIPES = ("sparse", "sparse_delta")  # the shipped sparse methods, judged per dataset


def sparse_rows(result: dict) -> list[tuple[str, str]]:
    """(dataset, method) of every shipped sparse method and its `+` variants in `result`,
    each variant right after its recipe."""
    runs = result["runs"]
    ran = {tuple(key.split("/")[:2]) for key in runs}
    rows = []
    for dataset in result["summary"]:
        for recipe in SPARSE_RECIPES:
            names = [recipe] + [n for n in result["settings"]["methods"]
                                if n.startswith(f"{recipe}+")]
            rows += [(dataset, name) for name in names if (dataset, name) in ran]
        rows += [(dataset, name) for name in result["settings"]["methods"]
                 if is_tuned(result, name) and (dataset, name) in ran]
    return rows


def is_tuned(result: dict, name: str) -> bool:
    """Whether method `name` of an accuracy result is one a `spadapt tune` study found."""
    return result["settings"]["methods"].get(name, {}).get("group") == "tuned"


def best_untuned(result: dict, rows: list[tuple[str, str]], dataset: str) -> str | None:
    """The sparse method of `rows` with the highest mean accuracy on `dataset`, among those
    run with the most seeds (a tuned method is judged against it)."""
    summary = result["summary"][dataset]
    names = [name for d, name in rows if d == dataset and not is_tuned(result, name)]
    if not names:
        return None
    most = max(summary[name]["seeds"] for name in names)
    return max((name for name in names if summary[name]["seeds"] == most),
               key=lambda name: summary[name]["mean"])


def sparse_methods_section(result: dict) -> list[str]:
    """The sparse methods and their variants (`sparse+...`, `sparse_delta+...`) of a longer
    accuracy run, as paired differences per seed against their recipe, full fine-tuning and
    LoRA, with the verdict of issue 14's bar (within 1 point of full and ≥ LoRA); and a plot
    of the differences to full fine-tuning, one panel per dataset."""
    runs = result["runs"]
    rows = sparse_rows(result)
    methods = result["settings"]["methods"]
    if not any("+" in name or is_tuned(result, name) for _, name in rows):
        return []
    steps = training_steps(result)
    lines = [f"## Sparse methods against full fine-tuning and LoRA ({steps} steps)", "",
             "The same runs as the table above. Differences in accuracy points, paired by seed: "
             "mean ± standard error of the per-seed differences (seeds). Bar: within 1 point "
             "of full fine-tuning and ≥ LoRA, both on the mean. A method found by `spadapt "
             "tune` (its description below the table) is compared, in the column of its "
             "recipe, with the best of the other sparse methods on that dataset (named).", "",
             "| dataset | method | accuracy | − its recipe | − full | − LoRA | bar |",
             "|---|---|---|---|---|---|---|"]
    for dataset, name in rows:
        entry = result["summary"][dataset][name]
        tuned = is_tuned(result, name)
        recipe = best_untuned(result, rows, dataset) if tuned else name.split("+")[0]
        versus = {other: paired_difference(runs, dataset, name, other)
                  for other in (recipe, "full", "lora") if other not in (name, None)}
        cells = [_points(versus.get(recipe)) if recipe not in (name, None) else "–",
                 _points(versus["full"]), _points(versus["lora"])]
        if tuned and recipe is not None:
            cells[0] += f" vs {recipe}"
        full, lora = versus["full"], versus["lora"]
        bar = "–" if full is None or lora is None else (
            "**met**" if full[0] >= -0.01 - 1e-9 and lora[0] >= -1e-9 else "**missed**")
        lines.append(f"| {dataset} | {name} | {entry['mean']:.4f} ({entry['seeds']}) | "
                     + " | ".join(cells) + f" | {bar} |")
    lines += [""] + [f"- {name} ({dataset}): {methods[name]['description']}"
                     for dataset, name in rows if is_tuned(result, name)]
    if lines[-1] == "":
        lines.pop()
    picture = f"accuracy_{steps}_paired.png"
    _paired_plot(result, rows, RESULTS_DIR / picture)
    lines += ["", f"![paired differences to full fine-tuning](benchmarks/results/{picture})"]
    return lines + [""]


def _paired_plot(result: dict, rows: list[tuple[str, str]], path: Path) -> None:
    """Per dataset: each sparse method's (and LoRA's) paired difference to full fine-tuning,
    mean ± standard error, with the 1-point bar dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(dataset for dataset, _ in rows))
    figure, panels = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.5),
                                  squeeze=False, sharey=True)
    for axes, dataset in zip(panels[0], datasets, strict=True):
        names = ["lora"] + [name for d, name in rows if d == dataset]
        points = [(name, paired_difference(result["runs"], dataset, name, "full"))
                  for name in names]
        points = [(name, d) for name, d in points if d is not None]
        for position, (name, (mean, error, _)) in enumerate(points):
            axes.errorbar(position, 100 * mean, yerr=0 if math.isnan(error) else 100 * error,
                          fmt="o" if "+" not in name else "s", capsize=3,
                          color="grey" if name == "lora" else None)
        axes.axhline(-1.0, linestyle="--", color="red", linewidth=1)
        axes.axhline(0.0, color="black", linewidth=0.5)
        axes.set_xticks(range(len(points)), [name for name, _ in points], rotation=60,
                        ha="right", fontsize=8)
        axes.set_title(dataset)
    panels[0][0].set_ylabel("− full fine-tuning (points)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _accuracy_plot(summary: dict, values: dict, methods: dict) -> None:
    """Mean accuracy against trained non-zero values (log x), one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4.5),
                                  squeeze=False)
    for axes, (dataset, table) in zip(panels[0], summary.items(), strict=True):
        for name, entry in table.items():
            counts = values.get((dataset, name))
            if not counts:
                continue
            marker = "o" if methods.get(name, {}).get("group") == "matched" else "s"
            x = statistics.median(counts)
            axes.errorbar(x, entry["mean"], yerr=entry["std"], fmt=marker, capsize=3)
            axes.annotate(name, (x, entry["mean"]), textcoords="offset points",
                          xytext=(4, 4), fontsize=8)
        axes.set_xscale("log")
        axes.set_xlabel("trained non-zero values (log)")
        axes.set_ylabel("accuracy (mean ± std over seeds)")
        axes.set_title(dataset)
    figure.tight_layout()
    figure.savefig(RESULTS_DIR / "accuracy.png", dpi=110)
    plt.close(figure)


def _accuracy_target_rows(label: str, table: dict) -> list[tuple[str, str, str]]:
    """The two accuracy targets' rows from a {method: mean/std/seeds} table holding the sparse
    adapter, full fine-tuning and LoRA (none when one of them is missing), and, where the table
    has the head-only reference, how much of its gap to full fine-tuning each method closes."""
    if not {"sparse", "full", "lora"} <= set(table):
        return []
    sparse, full, lora = (table[n]["mean"] for n in ("sparse", "full", "lora"))
    rows = []
    for name in SPARSE_RECIPES:
        if name not in table:
            continue
        ours = table[name]["mean"]
        seeds = min(table[n]["seeds"] for n in (name, "full", "lora"))
        rows += [(f"{label}: {name} within 1 point of full",
                  f"{100 * (ours - full):+.2f} points ({_seeds(seeds)})",
                  verdict(ours - full, -0.01, higher_is_better=True)),
                 (f"{label}: {name} ≥ LoRA at the matched budget",
                  f"{100 * (ours - lora):+.2f} points ({_seeds(seeds)})",
                  verdict(ours - lora, 0.0, higher_is_better=True))]
    if "head" in table and full > table["head"]["mean"]:
        head = table["head"]["mean"]  # what training the head alone on the frozen base reaches
        rows.append((f"{label}: (context) share of the head-only → full gap closed",
                     f"sparse {(sparse - head) / (full - head):.0%}, LoRA "
                     f"{(lora - head) / (full - head):.0%} (head only {head:.3f})", "–"))
    return rows


def tuned_target_rows(result: dict) -> list[tuple[str, str, str]]:
    """Issue 15's targets for each method a `spadapt tune` study found (group "tuned"),
    paired by seed: within 1 point of full fine-tuning, and ≥ the best other sparse method."""
    steps = training_steps(result)
    sparse = sparse_rows(result)
    rows = []
    for dataset, name in sparse:
        if not is_tuned(result, name):
            continue
        label = f"{dataset}, {steps} steps: {name} (spadapt tune's choice)"
        full = paired_difference(result["runs"], dataset, name, "full")
        if full is not None:
            rows.append((f"{label} within 1 point of full", _points(full),
                         verdict(full[0], -0.01, higher_is_better=True)))
        other = best_untuned(result, sparse, dataset)
        best = None if other is None else paired_difference(result["runs"], dataset, name,
                                                            other)
        if best is not None:
            rows.append((f"{label} ≥ the best other sparse method ({other})", _points(best),
                         verdict(best[0], 0.0, higher_is_better=True)))
    return rows


PAPER_CLAIMS = (  # (configuration, claim, margin over the dense r=64 adapter's accuracy)
    ("claim_snip_0.6", "SNIP at density 0.6 ≥ dense adapter (r=64)", 0.0),
    ("claim_random_0.2", "random at density 0.2 within 1 point of dense (r=64)", -0.01),
    ("claim_large_sparse", "large-sparse ≥ dense at the same non-zeros (r=64)", 0.0),
)


def _claim_rows(label: str, table: dict) -> list[tuple[str, str, str]]:
    """The SparseAdapter paper's claims against the dense r=64 adapter of the same runs."""
    if "claim_dense_r64" not in table:
        return []
    dense = table["claim_dense_r64"]["mean"]
    rows = []
    for name, text, margin in PAPER_CLAIMS:
        if name in table:
            gap = table[name]["mean"] - dense
            rows.append((f"{label}: paper claim, {text}",
                         f"{100 * gap:+.2f} points ({_seeds(table[name]['seeds'])})",
                         verdict(gap, margin, higher_is_better=True)))
    return rows


def targets_section(step: dict | None, storage: dict | None, inference: dict | None,
                    accuracy: dict | None, longer: list[dict],
                    sweeps: list[dict], generate: dict | None = None) -> list[str]:
    rows = []
    if step:
        c = step["competitors"]

        def ratio(name: str) -> float:
            return c[name]["ratio_to_floor"]["median"]

        for name, limit in (("sparse", 1.10), ("sparse_delta", 1.25)):
            if name in c:
                rows.append((f"{name} step ≤ {limit:.2f} × floor", f"{ratio(name):.3f}",
                             verdict(ratio(name), limit)))
                if "lora" in c:
                    faster = c[name]["ratio_to_lora"]["median"]
                    rows.append((f"{name} step faster than PEFT LoRA", f"{faster:.3f} × LoRA",
                                 verdict(faster, 1.0 - 1e-9)))
        if "sparse" in c:
            memory = c["sparse"]["memory"]
            rows.append(("sparse peak memory ≤ 1.10 × floor", f"{memory['ratio_to_floor']:.3f}",
                         verdict(memory["ratio_to_floor"], 1.10)))
            if "lora" in c:
                versus = memory["peak_bytes"] / c["lora"]["memory"]["peak_bytes"]
                rows.append(("sparse peak memory ≤ PEFT LoRA's", f"{versus:.3f} × LoRA",
                             verdict(versus, 1.0)))
    if storage:
        methods = storage["methods"]
        worst = max(e["ratio_to_bound"] for e in methods.values() if "ratio_to_bound" in e)
        rows.append(("adapter file ≤ 1.10 × information bound (worst spadapt method)",
                     f"{worst:.3f}", verdict(worst, 1.10)))
        sparse = [e["ratio_to_shira_at_equal_values"] for n, e in methods.items()
                  if e["library"] == "spadapt" and n != "adapter"]
        rows.append(("sparse file ≤ 0.45 × SHiRA at equal values (worst)", f"{max(sparse):.3f}",
                     verdict(max(sparse), 0.45)))
    if inference:
        latency = inference["latency"]
        for name, entry in latency.items():
            if name in ("base", "lora", "sparse_delta_merged"):
                continue
            ratio = entry["ratio_to_base"]["median"]
            if "description" in entry:  # another size of a judged method, for comparison
                rows.append((f"(context) unmerged {entry['description']}: latency × base",
                             f"{ratio:.3f}", "–"))
                continue
            rows.append((f"unmerged {name} latency ≤ 1.10 × base", f"{ratio:.3f}",
                         verdict(ratio, 1.10)))
        merged = latency["sparse_delta_merged"]["ratio_to_base"]
        rows.append(("merged sparse_delta within noise of base",
                     f"{merged['median']:.3f} (rounds {merged['min']:.3f}–{merged['max']:.3f})",
                     verdict(abs(merged["median"] - 1), 0.03)))
        for name, entry in inference["mixed_batch"].items():
            value = entry["mixed_over_single_throughput"]["median"]
            rows.append((f"mixed 8-adapter throughput ≥ 0.8 × single ({name})", f"{value:.3f}",
                         verdict(value, 0.8, higher_is_better=True)))
        swap = inference["hot_swap"]["set_adapter_seconds"]["median"] * 1e3
        rows.append(("hot-swap median ≤ 5 ms", f"{swap:.3f} ms", verdict(swap, 5.0)))
    for result in ([accuracy] if accuracy else []) + longer:
        steps = training_steps(result)
        for dataset, table in result["summary"].items():
            rows += _accuracy_target_rows(f"{dataset}, {steps} steps", table)
    for result in sweeps:
        steps = training_steps(result)
        for dataset, choice in chosen_runs(result).items():
            table = {method: result["summary"][dataset][name] for method, name in choice.items()}
            rows += _accuracy_target_rows(
                f"{dataset}, {steps} steps, tuned on validation rows", table)
    for result in longer:
        rows += tuned_target_rows(result)
    for result in ([accuracy] if accuracy else []) + longer:
        steps = training_steps(result)
        for dataset, table in result["summary"].items():
            rows += _claim_rows(f"{dataset}, {steps} steps", table)
    rows += poc_markdown.quick_target_rows(poc_markdown.quick_runs())
    if generate and generate.get("runs"):
        rows += generate_target_rows(generate)
    lines = ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines + ["", "Written by `python -m benchmarks markdown` from "
                    "`benchmarks/results/*.json`, like every table between the generated "
                    "markers below; \"(context)\" rows are shown beside a target, not judged.",
                    ""]


def poc_section() -> list[str]:
    files = sorted(RESULTS_DIR.glob("poc_standard_rotten_tomatoes_seed*.json"))
    if not files:
        return []
    per_method: dict[str, list[float]] = {}
    seeds = []
    for path in files:
        result = json.loads(path.read_text())
        seeds.append(result["seed"])
        for method in result["methods"]:
            if "accuracy" in method:
                per_method.setdefault(method["name"], []).append(method["accuracy"])
    lines = ["## PoC on Rotten Tomatoes, `--budget standard`, per seed", "",
             f"Seeds {sorted(seeds)}; files `benchmarks/results/poc_standard_rotten_tomatoes_"
             "seed*.json`. Mean ± std over the seeds each method ran.", "",
             "| method | accuracy mean ± std | seeds |", "|---|---|---|"]
    for name, values in per_method.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {name} | {statistics.mean(values):.4f} ± {std:.4f} | {len(values)} |")
    lines.append("")
    for reference, margin in (("adapter", -0.01), ("full", -0.02)):
        if "sparse" in per_method and reference in per_method:
            gap = statistics.mean(per_method["sparse"]) - statistics.mean(per_method[reference])
            lines.append(f"- sparse (density 0.2) − {reference}: {100 * gap:+.2f} points on the "
                         f"mean (bar: ≥ {100 * margin:+.0f}): "
                         f"{verdict(gap, margin, higher_is_better=True)}.")
    return lines + [""]


JUDGED_DECODER_QUALITY = "generate_quality_256"  # the decoder run the Targets table judges
GENERATE_TARGET_SEEDS = 3  # the decoder-quality targets are judged on the mean of 3 seeds
LOSS_BARS = {"full": 0.05, "lora": 0.0}  # sparse_delta's eval loss − theirs, at most (nats)


def seed_count(seeds: int) -> str:
    """"1 seed", "3 seeds"."""
    return f"{seeds} seed{'s' if seeds != 1 else ''}"


def loss_difference(difference: tuple[float, float, int] | None) -> str:
    """A paired eval-loss difference (`paired_difference`'s mean, standard error, seeds) as
    "+0.027 ± 0.008", without the error over one seed; "—" when there is none."""
    if difference is None:
        return "—"
    mean, error, _ = difference
    return f"{mean:+.3f}" + ("" if math.isnan(error) else f" ± {error:.3f}")


def generate_section(result: dict) -> list[str]:
    """Decoder quality (`python -m benchmarks generate`): per dataset, every method's means,
    the paired loss differences, and the issue's targets with verdicts."""
    from .generate import summary

    settings = result.get("settings", {})
    rows = summary(result)
    lines = [f"## Decoder quality: the generative PoC's methods on SmolLM2-135M-Instruct, "
             f"{settings.get('steps')} steps", "",
             f"`python -m benchmarks generate`: {settings.get('steps')} steps of "
             f"{settings.get('batch_size')} rows, sequences up to {settings.get('max_length')} "
             f"tokens, greedy answers of up to {settings.get('max_new_tokens')} tokens on "
             f"{settings.get('eval_rows')} evaluation rows, training and evaluation forwards "
             f"in {settings.get('precision', 'fp32')}; each method trained as the PoC "
             "trains it (its recipe's learning rate). Mean over the seeds each ran; paired "
             "differences by seed (± standard error when there are 2 or more).", "",
             "| dataset | method | seeds | eval loss | perplexity | exact match | ROUGE-L | "
             "non-zeros | file | Δ loss vs full | Δ loss vs LoRA |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['seeds']} | {r['eval_loss']:.3f} | "
            f"{r['perplexity']:.2f} | {100 * r['exact_match']:.1f}% | {100 * r['rouge_l']:.1f}% "
            f"| {r['nonzero_params']:,.0f} | {fmt.size(int(r['adapter_bytes']))} | "
            f"{loss_difference(r.get('loss_vs_full'))} | "
            f"{loss_difference(r.get('loss_vs_lora'))} |")
    lines.append("")
    by_key = {(r["dataset"], r["method"]): r for r in rows}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        delta_row, shira = by_key.get((dataset, "sparse_delta")), by_key.get((dataset, "shira"))
        lora, matched = by_key.get((dataset, "lora")), by_key.get((dataset, MATCHED))
        if delta_row and delta_row.get("loss_vs_full"):
            vs_full, _, full_seeds = delta_row["loss_vs_full"]
            lines.append(f"- {dataset}: sparse_delta − full fine-tuning {vs_full:+.3f} nats "
                         f"over {seed_count(full_seeds)} (bar ≤ {LOSS_BARS['full']:+.2f}): "
                         f"{verdict(vs_full, LOSS_BARS['full'])}.")
        if matched and lora and matched.get("loss_vs_lora"):
            vs_lora, _, lora_seeds = matched["loss_vs_lora"]
            lines.append(f"- {dataset}: at equal values ({matched['nonzero_params']:,.0f} "
                         f"against LoRA's {lora['nonzero_params']:,.0f}), {MATCHED} − LoRA "
                         f"{vs_lora:+.3f} nats over {seed_count(lora_seeds)} (bar ≤ "
                         f"{LOSS_BARS['lora']:g}): {verdict(vs_lora, LOSS_BARS['lora'])}.")
        if delta_row and lora and delta_row.get("loss_vs_lora"):
            vs_lora, _, lora_seeds = delta_row["loss_vs_lora"]
            lines.append(f"- {dataset}: sparse_delta with "
                         f"{delta_row['nonzero_params'] / lora['nonzero_params']:.2f} × LoRA's "
                         f"values − LoRA {vs_lora:+.3f} nats over {seed_count(lora_seeds)} "
                         "(not judged: the bar is at equal values).")
        if delta_row and shira:
            per_value = ((delta_row["adapter_bytes"] / delta_row["nonzero_params"])
                         / (shira["adapter_bytes"] / shira["nonzero_params"]))
            lines.append(f"- {dataset}: sparse_delta's file per stored value = {per_value:.2f} "
                         f"× PEFT SHiRA's (bar ≤ 0.45): {verdict(per_value, 0.45)}; whole "
                         f"files {fmt.size(int(delta_row['adapter_bytes']))} for "
                         f"{delta_row['nonzero_params']:,.0f} values against "
                         f"{fmt.size(int(shira['adapter_bytes']))} for "
                         f"{shira['nonzero_params']:,.0f}.")
    return lines + [""]


def generate_target_rows(result: dict) -> list[tuple[str, str, str]]:
    """The Targets table's rows for decoder quality, per dataset, paired by seed: sparse_delta's
    eval loss against full fine-tuning (≤ +0.05 nats), `MATCHED`'s against LoRA at equal values
    (≤ 0), and the builtin sparse_delta's against LoRA as context (it keeps more values); a
    verdict on fewer than `GENERATE_TARGET_SEEDS` seeds says how many it rests on."""
    from .generate import summary

    steps = result.get("settings", {}).get("steps")
    rows = []
    for row in summary(result):
        comparisons = {"sparse_delta": (("full", f"sparse_delta eval loss within "
                                                 f"{LOSS_BARS['full']:.2f} nats of full"),
                                        ("lora", "(context) sparse_delta, with more values "
                                                 "than LoRA, eval loss − PEFT LoRA's")),
                       MATCHED: (("lora", "sparse_delta at LoRA's count of values: eval loss "
                                          "≤ PEFT LoRA's"),)}.get(row["method"], ())
        for other, label in comparisons:
            difference = row.get(f"loss_vs_{other}")
            if difference is None:
                continue
            mean, _, seeds = difference
            measured = f"{loss_difference(difference)} nats ({seeds})"
            if label.startswith("(context)"):
                judged = "–"
            else:
                judged = verdict(mean, LOSS_BARS[other])
                if seeds < GENERATE_TARGET_SEEDS:
                    judged += f" on {seeds} of {GENERATE_TARGET_SEEDS} seeds"
            rows.append((f"{row['dataset']}, decoder, {steps} steps: {label}", measured, judged))
    return rows


def levers_section(result: dict) -> list[str]:
    """`python -m benchmarks levers`: peak memory and step time per setting, and the issue's
    targets for the int8 base and gradient checkpointing."""
    runs = result["runs"]
    lines = ["## Decoder memory levers (SmolLM2-135M-Instruct, sparse_delta 1%)", "",
             "`python -m benchmarks levers`: batches of 8 rows of the setting's length, one "
             "fresh process per setting; peak = the process's resident high-water mark during "
             "training (the loaded base included); sequential runs, so times are indicative.",
             "", "| setting | tokens per row | steps | peak memory | median step | "
             "loss, mean of the last 4 steps |", "|---|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        lines.append(f"| {name} | {run['length']} | {run['steps']} | "
                     f"{fmt.size(run['peak_bytes'])} | {run['step_seconds_median']:.2f} s | "
                     f"{run['loss_last4']:.4f} |")
    lines.append("")
    if "fp32" in runs and "int8" in runs:
        fp32, int8 = runs["fp32"], runs["int8"]
        memory = int8["peak_bytes"] / fp32["peak_bytes"]
        loss = abs(int8["loss_last4"] - fp32["loss_last4"]) / fp32["loss_last4"]
        lines.append(f"- int8 base: peak {memory:.2f} × the fp32 base's (bar ≤ 0.45): "
                     f"{verdict(memory, 0.45)}; loss after {int8['steps']} steps "
                     f"{100 * loss:.2f}% from fp32's (bar ≤ 2%): {verdict(loss, 0.02)}.")
    if "fp32_512" in runs and "checkpointing_512" in runs:
        plain, recomputed = runs["fp32_512"], runs["checkpointing_512"]
        memory = recomputed["peak_bytes"] / plain["peak_bytes"]
        step = recomputed["step_seconds_median"] / plain["step_seconds_median"]
        lines.append(f"- gradient checkpointing at 512 tokens: peak {memory:.2f} × (bar ≤ 0.6): "
                     f"{verdict(memory, 0.6)}; step {step:.2f} × (bar ≤ 1.4): "
                     f"{verdict(step, 1.4)}.")
    return lines + [""]


def generate_lr_section(result: dict) -> list[str]:
    """`python -m benchmarks generate_lr`: each method's validation loss and ROUGE-L per rate,
    the recipe's own rate marked and each method's best in bold."""
    from spadapt.recipe import load_recipe

    settings, runs = result["settings"], result["runs"]
    lines = [f"## Decoder learning rates, on validation rows, {settings['steps']} steps", "",
             f"`python -m benchmarks generate_lr`: {settings['steps']} steps of "
             f"{settings['batch_size']} rows in {settings['precision']}, scored on "
             f"{settings['validation_rows']} validation rows split off the training rows (never "
             "the evaluation rows), seed 0. The recipe's own rate is marked ★, the lowest "
             "validation loss of each method on each dataset is in bold.", "",
             "| dataset | method | learning rate | validation loss | ROUGE-L |",
             "|---|---|---:|---:|---:|"]
    best: dict[tuple[str, str], float] = {}
    for key, run in runs.items():
        dataset, method, _ = key.split("/")
        best[dataset, method] = min(best.get((dataset, method), math.inf), run["eval_loss"])
    for key, run in runs.items():
        dataset, method, rate = key.split("/")
        recipe = method.partition("+")[0]  # a variant's rate is its recipe's
        recipe = "sparse_delta" if recipe == MATCHED else recipe
        own = load_recipe(recipe).train_config().learning_rate == float(rate)
        loss = f"{run['eval_loss']:.3f}"
        if run["eval_loss"] == best[dataset, method]:
            loss = f"**{loss}**"
        lines.append(f"| {dataset} | {method} | {float(rate):g}{' ★' if own else ''} | "
                     f"{loss} | {100 * run['rouge_l']:.1f}% |")
    return lines + [""]


def _results() -> tuple[dict | None, dict | None, dict | None, dict | None]:
    """The step, storage, inference and main accuracy results (None for a part not run)."""
    step, storage, inference, accuracy = (load_result(n) for n in
                                          ("train_step", "storage", "inference", "accuracy"))
    return step, storage, inference, accuracy


def generated_targets() -> str:
    """The Targets block, markers included."""
    step, storage, inference, accuracy = _results()
    lines = [TARGETS_BEGIN, ""]
    lines += targets_section(step, storage, inference, accuracy, _longer_accuracy_results(),
                             _sweep_results(), load_result(JUDGED_DECODER_QUALITY))
    return "\n".join(lines + [TARGETS_END])


def generated() -> str:
    """The block of detailed tables, markers included."""
    step, storage, inference, accuracy = _results()
    lines = [BEGIN, "", "Everything from here to the end marker is written by "
             "`python -m benchmarks markdown` from `benchmarks/results/*.json`.", ""]
    if step:
        lines += step_section(step)
    if storage:
        lines += storage_section(storage)
    if inference:
        lines += inference_section(inference)
    if accuracy:
        lines += accuracy_section(accuracy)
    for result in _longer_accuracy_results():
        lines += accuracy_section(result, main=False)
        lines += sparse_methods_section(result)
    for result in _sweep_results():
        lines += sweep_section(result)
        lines += settings_markdown.settings_section(result)
    lines += poc_section()
    lines += poc_markdown.quick_section(poc_markdown.quick_runs())
    for name in ("generate_quality", JUDGED_DECODER_QUALITY):  # 48 steps, then 256
        generate = load_result(name)
        if generate and generate.get("runs"):
            lines += generate_section(generate)
    for name in ("generate_lr", "generate_lr_256"):  # the quick budget's 24 steps, then 256
        rates = load_result(name)
        if rates and rates.get("runs"):
            lines += generate_lr_section(rates)
    levers = load_result("decoder_levers")
    if levers and levers.get("runs"):
        lines += levers_section(levers)
    for name, section in (("decoder_step", decoder_markdown.step_section),
                          ("generation", decoder_markdown.generation_section),
                          ("memory_model", decoder_markdown.memory_model_section)):
        result = load_result(name)
        if result:
            lines += section(result)
    return "\n".join(lines + [END])


def _put(text: str, begin: str, end: str, block: str, at_end: bool) -> str:
    """`text` with the part from `begin` to `end` replaced by `block`; a page without those
    markers gets `block` at its end (`at_end`) or right after its `# ` title line."""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    if at_end:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    title, _, body = text.partition("\n")
    if title.startswith("# "):
        return f"{title}\n\n{block}\n\n{body.lstrip()}"
    return f"{block}\n\n{text}"


def regenerate(page: Path = PAGE) -> Path:
    """Rewrite the generated blocks of `page` (see the module docstring); idempotent."""
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    text = _put(text, BEGIN, END, generated(), at_end=True)
    text = _put(text, TARGETS_BEGIN, TARGETS_END, generated_targets(), at_end=False)
    atomic.write_file(page, text.encode())
    return page


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def main(args: argparse.Namespace) -> Path:
    return regenerate()
