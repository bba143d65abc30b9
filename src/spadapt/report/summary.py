"""Which method to pick, and the plain-language summary that says why.

The rule (stated in the report too): among the methods that ran without error, pick the one
that stores the fewest non-zero parameters while its accuracy is within `TOLERANCE` (1 point)
of the best accuracy; ties go to the higher accuracy, then the shorter training time. The
"accuracy" is the run's quality metric (`Results.metric`: exact match or ROUGE-L for a
generative run). The base model as it is (`trained: false`) is shown, never picked.

`summary_text` writes the sentences with two callables from the renderer: `esc` escapes
text (HTML or Markdown) and `strong` emphasises a method name, so text from results.json
never reaches the page unescaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import fmt
from .i18n import strings
from .results import Method, Results

TOLERANCE = 0.01  # accuracy within 1 point of the best counts as "as good"
FULL = "full"  # the method name of full fine-tuning, the reference when present


def recommend(results: Results) -> Method | None:
    """The recommended method, or None when every trained method failed."""
    ok = trained_methods(results)
    if not ok:
        return None
    best = max(m.accuracy for m in ok)
    near = [m for m in ok if m.accuracy >= best - TOLERANCE - 1e-12]
    return min(near, key=lambda m: (m.nonzero_params, -m.accuracy, m.train_seconds))


def trained_methods(results: Results) -> list[Method]:
    """The methods that trained and ran without error: the candidates of `recommend`."""
    return [m for m in results.methods if m.ok and m.trained]


def full_method(results: Results) -> Method | None:
    """Full fine-tuning, when it ran without error."""
    return next((m for m in results.methods if m.name == FULL and m.ok), None)


@dataclass
class SummaryText:
    headline: str
    rule: str
    metric_note: str | None = None  # generate: how answers were scored, and why that metric
    vs_full_intro: str | None = None
    vs_full: list[str] = field(default_factory=list)
    cost_intro: str = ""
    costs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def summary_text(results: Results, lang: str, esc: Callable[[str], str],
                 strong: Callable[[str], str]) -> SummaryText:
    """The summary's sentences in `lang`, escaped with `esc`, method names through `strong`."""
    s = {key: esc(value) for key, value in strings(lang, results.metric).items()}
    rec = recommend(results)
    full = full_method(results)
    rule = s["rule"]
    if any(m.ok and not m.trained for m in results.methods):
        rule += " " + s["rule_base"]
    out = SummaryText(headline=_headline(rec, full, results, s, esc, strong), rule=rule,
                      cost_intro=s["cost_intro"])
    if results.metric_reason is not None:
        out.metric_note = s.get(f"metric_{results.metric_reason}")
    if full is not None:
        out.vs_full_intro = s["vs_full_intro"].format(acc=fmt.percent(full.accuracy))
        for m in results.methods:
            if m.ok and m is not full:
                out.vs_full.append(s["vs_full_item"].format(
                    name=esc(m.name), delta=_delta(m.accuracy - full.accuracy, s)))
    for m in results.methods:
        if not m.ok:
            out.failures.append(s["failed_item"].format(name=esc(m.name), error=esc(m.error)))
            continue
        if not m.trained:
            continue
        eps = m.examples_per_second
        out.costs.append(s["cost_item"].format(
            name=esc(m.name), time=fmt.duration(m.train_seconds, s),
            step=fmt.step(m.step_seconds_median, s),
            throughput="" if eps is None else s["throughput"].format(eps=fmt.sig(eps)),
            memory=fmt.size(m.peak_memory_bytes), size=fmt.size(m.adapter_bytes)))
    return out


def _headline(rec: Method | None, full: Method | None, results: Results, s: dict[str, str],
              esc: Callable[[str], str], strong: Callable[[str], str]) -> str:
    if rec is None:
        return s["pick_none"]
    name = strong(esc(rec.name))
    if full is rec:
        return s["pick_full"].format(name=name, acc=fmt.percent(rec.accuracy),
                                     size=fmt.size(rec.adapter_bytes),
                                     time=fmt.duration(rec.train_seconds, s))
    if full is not None:
        diff = rec.accuracy - full.accuracy
        if abs(diff) < 0.0005:
            acc = s["acc_equal_full"]
        else:
            acc = s["acc_below_full" if diff < 0 else "acc_above_full"].format(
                points=fmt.points(diff))
        ratio = _versus(full.adapter_bytes, rec.adapter_bytes, s, "ratio_smaller",
                        "ratio_larger", "ratio_same")
        speed = _versus(full.train_seconds, rec.train_seconds, s, "faster", "slower", "as_fast")
        return s["pick_vs_full"].format(
            name=name, acc_vs_full=acc, size=fmt.size(rec.adapter_bytes),
            full_size=fmt.size(full.adapter_bytes), ratio=ratio, speed=speed)
    best = max(trained_methods(results), key=lambda m: m.accuracy)
    if best.accuracy - rec.accuracy < 0.0005:
        acc_vs_best = s["acc_best"]
    else:
        acc_vs_best = s["acc_below_best"].format(
            points=fmt.points(best.accuracy - rec.accuracy),
            best=f"{esc(best.name)} {fmt.percent(best.accuracy)}")
    return s["pick_plain"].format(name=name, acc=fmt.percent(rec.accuracy),
                                  acc_vs_best=acc_vs_best, size=fmt.size(rec.adapter_bytes),
                                  nonzero=fmt.count(rec.nonzero_params),
                                  time=fmt.duration(rec.train_seconds, s))


def _delta(diff: float, s: dict[str, str]) -> str:
    if abs(diff) < 0.0005:
        return s["delta_equal"]
    return s["delta_below" if diff < 0 else "delta_above"].format(points=fmt.points(diff))


def _versus(reference: float, ours: float, s: dict[str, str], less: str, more: str,
            same: str) -> str:
    """`reference / ours` in words: "1/320" or "1.4× faster" (`less`), its inverse (`more`),
    or `same` within 5%."""
    if ours <= 0 or reference <= 0 or 0.95 <= reference / ours <= 1.05:
        return s[same]
    r = reference / ours
    return s[less].format(ratio=fmt.ratio(r)) if r > 1 else s[more].format(ratio=fmt.ratio(1 / r))
