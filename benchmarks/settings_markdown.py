"""The training settings swept across datasets, for BENCHMARKS.md: each warm-up or head-rate
variant of a method (`<name>+warmup0@1x`, `<name>+head3x@1x`, from `python -m benchmarks
accuracy --warmup-ratios ... / --head-lr-scales ...`) against the same method at its recipe's
settings, paired by dataset and seed, on validation rows (what a choice may look at) and on
evaluation rows (what it is judged by).

The rule the recipes follow: a setting replaces the recipe's only where it raises validation
accuracy by at least `MIN_GAIN` on every dataset it was swept on; the table says for each
variant whether it did.
"""

from __future__ import annotations

import re
import statistics

from .common import paired_difference

# a warm-up or head-rate component of a run name, e.g. "+warmup0" or "+head3x"
MIN_GAIN = 0.005  # half a point: paired single runs on 1,000 rows move by about that much
SETTING = re.compile(r"\+(warmup[0-9.]+|head[0-9.]+x)(?=[+@]|$)")


def setting_pairs(runs: dict) -> list[tuple[str, str, str]]:
    """(variant, the same method at the recipe's settings, the setting) for every run name in
    `runs` (keyed "dataset/name/seed") with a warm-up or head-rate component whose base name
    also ran."""
    names = {key.split("/")[1] for key in runs}
    pairs = []
    for name in sorted(names):
        match = SETTING.search(name)
        if match:
            base = name[:match.start()] + name[match.end():]
            if base in names:
                pairs.append((name, base, match.group(1)))
    return pairs


def _points(difference: tuple[float, float, int] | None) -> str:
    if difference is None:
        return "–"
    mean, error, seeds = difference
    spread = "" if seeds == 1 else f" ± {100 * error:.2f}"
    return f"{100 * mean:+.2f}{spread} ({seeds})"


def settings_section(result: dict) -> list[str]:
    """The section for one sweep result; empty where it swept no training setting."""
    runs = result["runs"]
    pairs = setting_pairs(runs)
    if not pairs:
        return []
    datasets = list(result["summary"])
    lines = ["## Training settings across datasets", "",
             "Warm-up ratio and the head's learning rate, varied one at a time from each "
             "recipe's (warm-up 0.1, TrainConfig's; the head at the recipe's learning rate) at "
             "the sweep's budget above. Differences in accuracy points against the same "
             "method at its recipe's settings, paired by seed (mean ± paired standard error, "
             "seeds): validation rows choose, evaluation rows judge. A setting replaces the "
             "recipe's only where it raises validation accuracy by at least "
             f"{100 * MIN_GAIN:.1f} points on every dataset swept.", "",
             "| method | setting | dataset | validation Δ | evaluation Δ | verdict |",
             "|---|---|---|---|---|---|"]
    for variant, base, setting in pairs:
        gains = []
        for dataset in datasets:
            validation = paired_difference(runs, dataset, variant, base, "validation_accuracy")
            if validation is None:
                continue
            gains.append(validation[0])
            evaluation = paired_difference(runs, dataset, variant, base)
            lines.append(f"| {base} | {setting} | {dataset} | {_points(validation)} | "
                         f"{_points(evaluation)} | |")
        raised = sum(gain >= MIN_GAIN for gain in gains)
        verdict = "**replaces the recipe's**" if raised == len(gains) else "the recipe's stays"
        lines.append(f"| {base} | {setting} | **mean of {len(gains)}** | "
                     f"{100 * statistics.mean(gains):+.2f} (≥ {100 * MIN_GAIN:.1f} on {raised} "
                     f"of {len(gains)}) | | {verdict} |")
    return lines + [""]
