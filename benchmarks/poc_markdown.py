"""The quick-budget PoC runs in BENCHMARKS.md: one table of every method per dataset, and the
target rows (the recommendation is a spadapt sparse method; the run fits in 10 minutes).

They read `benchmarks/results/poc_quick_<dataset>_seed<seed>.json`, each the results.json of
`spadapt poc --data builtin:<dataset> --budget quick --seed <seed>` copied as it was written.
The recommendation is the report's own (`spadapt.report.summary.recommend`).
"""

from __future__ import annotations

import json
from pathlib import Path

from spadapt.report import fmt
from spadapt.report.results import parse_results
from spadapt.report.summary import recommend

from . import common
from .tables import verdict

# spadapt's sparse methods among the PoC's: the dense adapter, LoRA and full fine-tuning are not
SPARSE_METHODS = ("sparse", "large_sparse", "sparse_delta", "tuned")
QUICK_MINUTES = 10.0  # the issues' bar for a quick PoC on this 2-core machine
RECOMMENDED_ON = 3  # a spadapt sparse method is recommended on at least this many datasets


def quick_runs(directory: Path | None = None) -> list[dict]:
    """The recorded quick PoC results.json files in `directory` (default: the results
    folder), classification first, by dataset name."""
    directory = common.RESULTS_DIR if directory is None else directory
    runs = [json.loads(path.read_text()) for path in
            sorted(directory.glob("poc_quick_*_seed*.json"))]
    return sorted(runs, key=lambda r: (r.get("task") == "generate", _dataset(r)))


def _dataset(run: dict) -> str:
    return run["dataset"]["name"].removeprefix("builtin:")


def _precision(run: dict) -> str:
    return run.get("precision", "fp32")  # runs from before --precision ran in fp32


def _metric(run: dict) -> str:
    return run.get("metric") or "accuracy"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"


def quick_section(runs: list[dict]) -> list[str]:
    """Every method of every recorded quick PoC: its metric, non-zeros, file, times."""
    if not runs:
        return []
    lines = ["## PoC at the quick budget, per dataset", "",
             "`spadapt poc --data builtin:<dataset> --budget quick` (the task's six default "
             "methods; `poc_quick_<dataset>_seed<seed>.json`). ★ = the report's "
             "recommendation; \"metric\": what it compares. "
             "\"precision\": the run's forwards (quick's `auto`: bf16 autocast where the CPU "
             "computes bf16 natively). \"run\": the whole command, loading and report "
             "included, when recorded.", "",
             "| dataset | seed | precision | run | method | metric | value | non-zeros | file "
             "| train | method's wall |",
             "|---|---:|---|---:|---|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        chosen = recommend(parse_results(run))
        metric = _metric(run)
        total = _minutes(run["run_seconds"]) if "run_seconds" in run else "—"
        prefix = f"| {_dataset(run)} | {run['seed']} | {_precision(run)} | {total} |"
        for method in run["methods"]:
            if "error" in method:
                lines.append(f"{prefix} {method['name']} | failed: {method['error'][:80]} "
                             "| | | | | |")
                continue
            mark = " ★" if chosen is not None and chosen.name == method["name"] else ""
            lines.append(
                f"{prefix} {method['name']}{mark} | {metric} | {method[metric]:.3f} | "
                f"{method['nonzero_params']:,} | {fmt.size(method['adapter_bytes'])} | "
                f"{method['train_seconds']:.0f} s | {method['wall_seconds']:.0f} s |")
    return lines + [""]


def quick_target_rows(runs: list[dict]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict): the run time of each recorded quick PoC, and on how many
    classification datasets the recommendation is a spadapt sparse method."""
    rows = []
    for run in runs:
        if "run_seconds" in run:
            minutes = run["run_seconds"] / 60
            rows.append((f"{_dataset(run)}: quick PoC (seed {run['seed']}, "
                         f"{_precision(run)}) ≤ {QUICK_MINUTES:g} min",
                         f"{minutes:.1f} min", verdict(minutes, QUICK_MINUTES)))
    classify = [r for r in runs if r.get("task") != "generate"]
    if classify:
        picks = {_dataset(r): recommend(parse_results(r)) for r in classify}
        sparse = [name for name, m in picks.items() if m is not None and m.name in SPARSE_METHODS]
        said = ", ".join(f"{name}: {m.name if m else 'none'}" for name, m in picks.items())
        rows.append((f"quick PoC recommends a spadapt sparse method on ≥ {RECOMMENDED_ON} "
                     "datasets", f"{len(sparse)} of {len(picks)} ({said})",
                     verdict(len(sparse), RECOMMENDED_ON, higher_is_better=True)))
    return rows
