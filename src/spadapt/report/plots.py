"""The report's plots as PNG bytes: accuracy vs non-zero parameters, training curves, the
recommended method's confusion matrix, and the configuration search (poc --tune).

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch),
so it works headless and never touches a user's interactive session. Japanese plot text
needs a CJK font: `cjk_font()` looks for one among matplotlib's fonts and, failing that,
among the system's font files (e.g. Debian's fonts-ipaexfont-gothic or fonts-noto-cjk,
installed after matplotlib built its font cache). Without one, Japanese reports get English
plot text instead of tofu boxes; the surrounding HTML/Markdown stays Japanese.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import EngFormatter, PercentFormatter

from ..spread import Spread
from .content import plot_names, spread_method
from .i18n import strings
from .results import Method, Results
from .summary import recommend

# Families and file-name stems of common Japanese-capable fonts, most preferred first.
_CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "IPAPGothic",
                 "Source Han Sans JP", "TakaoGothic", "VL Gothic", "Hiragino Sans",
                 "Yu Gothic", "Meiryo", "MS Gothic", "Droid Sans Fallback",
                 "WenQuanYi Zen Hei", "Noto Sans CJK SC")
_CJK_FILE_STEMS = ("notosanscjk", "notosansjp", "ipaexg", "ipag", "ipapg", "sourcehansans",
                   "takaogothic", "vl-gothic", "droidsansfallback", "wqy-zenhei")
_PROBE = "精度学習"  # glyphs a Japanese plot needs
_LABEL_MAX = 24  # characters of a user label or method name shown in a plot
_DPI = 110


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font with Japanese glyphs, or None."""
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in by_name and _has_glyphs(by_name[family]):
            return family
    for path in font_manager.findSystemFonts():  # fonts installed after the cache was built
        stem = Path(path).name.lower().replace("_", "").replace(" ", "")
        if any(hint in stem for hint in _CJK_FILE_STEMS) and _has_glyphs(path):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None


def _has_glyphs(path: str) -> bool:
    try:
        font = FT2Font(path)
        return all(font.get_char_index(ord(ch)) for ch in _PROBE)
    except (OSError, RuntimeError, ValueError):
        return False


def plot_strings(lang: str, metric: str = "accuracy") -> tuple[dict[str, str], str | None]:
    """Plot text for `lang` (naming the quality `metric`) and the CJK font to draw it with
    (English when one is needed but missing)."""
    font = cjk_font()
    if lang != "en" and font is None:
        return strings("en", metric), None
    return strings(lang, metric), font


def render_plots(results: Results, lang: str) -> dict[str, bytes]:
    """PNG bytes of each plot in `plot_names(results)`, keyed by name."""
    t, font = plot_strings(lang, results.metric)
    colors = {m.name: f"C{i % 10}" for i, m in enumerate(results.methods)}
    rec = recommend(results)
    draw = {"accuracy": lambda: _accuracy(results, rec, t, colors),
            "curves": lambda: _curves(results, t, colors),
            "confusion": lambda: _confusion(results, rec, t),
            "search": lambda: _search(results, t),
            "spread": lambda: _spread_of(results, t)}
    rc = {"font.family": ["DejaVu Sans", *([font] if font else [])],  # per-glyph fallback
          "axes.unicode_minus": False, "text.usetex": False}
    out = {}
    with rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")  # unprintable user text
        for name in plot_names(results):
            out[name] = _png(draw[name]())
    return out


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, metadata={"Software": None})
    return buf.getvalue()


def _plain(text: str) -> str:
    """User text safe for matplotlib: no mathtext, shortened."""
    text = " ".join(str(text).split())
    if len(text) > _LABEL_MAX:
        text = text[:_LABEL_MAX - 1] + "…"
    return text.replace("$", r"\$")


def _accuracy(results: Results, rec: Method | None, t: dict[str, str],
              colors: dict[str, str]) -> Figure:
    fig = Figure(figsize=(7.5, 4.6), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ok = sorted((m for m in results.methods if m.ok and m.nonzero_params > 0),
                key=lambda m: m.nonzero_params)
    for m in ok:
        star = m is rec
        ax.scatter([m.nonzero_params], [m.accuracy], s=180 if star else 60,
                   marker="*" if star else "o", color=colors[m.name], zorder=3,
                   edgecolors="black" if star else "none")
    ax.set_xscale("log")
    xs = [m.nonzero_params for m in ok]
    ax.set_xlim(min(xs) / 3, max(xs) * 6)
    ys = [m.accuracy for m in ok]
    pad = max(0.01, (max(ys) - min(ys)) * 0.15)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    labels = [(m, _plain(m.name) + (f" ({t['p_recommended']})" if m is rec else ""))
              for m in ok]
    _place_labels(fig, ax, [(m.nonzero_params, m.accuracy, text) for m, text in labels])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel(t["p_nonzero_axis"])
    ax.set_ylabel(t["p_accuracy_axis"])
    ax.set_title(t["p_accuracy_title"])
    ax.grid(True, which="major", alpha=0.3)
    return fig


# Offsets (points) tried in turn for a point's label, so that labels do not overlap.
_LABEL_OFFSETS = ((8, 5, "left"), (8, -13, "left"), (-8, 5, "right"), (-8, -13, "right"),
                  (8, 17, "left"), (8, -25, "left"), (-8, 17, "right"), (-8, -25, "right"))


def _place_labels(fig: Figure, ax: object, points: list[tuple[float, float, str]]) -> None:
    """Annotate each (x, y, text), taking the first offset whose box overlaps no label yet."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # settle the constrained layout before measuring
    placed = []
    for x, y, text in points:
        for dx, dy, ha in _LABEL_OFFSETS:
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                               ha=ha, fontsize=9)
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            note.remove()
        else:
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=(8, 5),
                               fontsize=9)
            box = note.get_window_extent(renderer)
        placed.append(box)


def _curves(results: Results, t: dict[str, str], colors: dict[str, str]) -> Figure:
    with_history = [m for m in results.methods if m.ok and m.history]
    has_eval = any(p.eval_accuracy is not None for m in with_history for p in m.history)
    fig = Figure(figsize=(10, 4.2) if has_eval else (6.5, 4.2), dpi=_DPI,
                 layout="constrained")
    axes = fig.subplots(1, 2 if has_eval else 1, squeeze=False)[0]
    for m in with_history:
        loss = [(p.step, p.train_loss) for p in m.history if p.train_loss is not None]
        if loss:
            axes[0].plot(*zip(*loss, strict=True), color=colors[m.name], label=_plain(m.name))
        acc = [(p.step, p.eval_accuracy) for p in m.history if p.eval_accuracy is not None]
        if has_eval and acc:
            axes[1].plot(*zip(*acc, strict=True), marker="o", markersize=4,
                         color=colors[m.name], label=_plain(m.name))
    axes[0].set_title(t["p_loss_title"])
    axes[0].set_ylabel(t["p_loss_axis"])
    if has_eval:
        axes[1].set_title(t["p_eval_title"])
        axes[1].set_ylabel(t["p_accuracy_axis"])
        axes[1].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    for ax in axes:
        ax.set_xlabel(t["p_step_axis"])
        ax.grid(True, alpha=0.3)
    axes[-1].legend(fontsize=8)
    return fig


def _confusion(results: Results, rec: Method | None, t: dict[str, str]) -> Figure:
    assert rec is not None and rec.confusion_matrix is not None
    cm = rec.confusion_matrix
    n = len(cm)
    side = min(12.0, max(4.5, 0.55 * n + 2.5))
    fig = Figure(figsize=(side + 1, side), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    labels = [_plain(label) for label in results.labels]
    ax.set_xticks(range(n), labels, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), labels)
    if n <= 20:
        top = max((v for row in cm for v in row), default=0)
        for i, row in enumerate(cm):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=9,
                        color="white" if top and value > top / 2 else "black")
    ax.set_xlabel(t["p_pred_axis"])
    ax.set_ylabel(t["p_true_axis"])
    ax.set_title(t["p_confusion_title"].format(name=_plain(rec.name)))
    return fig


def _search(results: Results, t: dict[str, str]) -> Figure:
    search = results.search
    assert search is not None and search.points
    loss = search.score == "loss"  # lower is better, not a share
    fig = Figure(figsize=(7.5, 4.2), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    xs, ys = zip(*search.points, strict=True)
    ax.scatter(xs, ys, s=40, color="C0", zorder=3)
    if search.best_number is not None:
        ax.scatter([search.best_nonzero], [search.best_value], s=220, marker="*",
                   color="C3", edgecolors="black", zorder=4, label=t["p_search_best"])
        ax.legend(fontsize=9, loc="upper right" if loss else "lower right")
    set_nonzero_axis(ax, xs)
    if not loss:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel(t["p_nonzero_axis"])
    ax.set_ylabel(t["p_search_loss_axis"] if loss else t["p_accuracy_axis"])
    ax.set_title(t["p_search_title_loss"] if loss else t["p_search_title"])
    ax.grid(True, alpha=0.3)
    return fig


def set_nonzero_axis(ax: Axes, xs: Sequence[float]) -> None:
    """A log x axis for non-zero counts spread over more than 10 ×; over a narrower range a
    linear one with engineering labels (1.2M), where a log axis labels its minor ticks in
    overlapping powers of ten."""
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) > 10:
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _spread_of(results: Results, t: dict[str, str]) -> Figure:
    method = spread_method(results)
    assert method is not None and method.spread is not None
    return spread_figure(method.spread, t["p_spread_title"].format(name=_plain(method.name)), t)


def spread_figure(spread: Spread, title: str, t: dict[str, str]) -> Figure:
    """Kept values per layer, stacked by module (the layers' rows; `head` last)."""
    fig = Figure(figsize=(max(6.0, 0.45 * len(spread.layers) + 3), 4.2), dpi=_DPI,
                 layout="constrained")
    ax = fig.add_subplot()
    bottoms = [0] * len(spread.layers)
    for column, module in enumerate(spread.modules):
        heights = [row[column] for row in spread.counts]
        ax.bar(range(len(spread.layers)), heights, bottom=bottoms, label=_plain(module),
               color=f"C{column % 10}")
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(range(len(spread.layers)), [_plain(layer) for layer in spread.layers])
    ax.set_xlabel(t["p_layer_axis"])
    ax.set_ylabel(t["p_kept_axis"])
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def spread_png(spread: Spread, title: str, lang: str = "en") -> bytes:
    """The spread plot as PNG bytes (for `spadapt inspect --plot`)."""
    t, font = plot_strings(lang)
    rc = {"font.family": ["DejaVu Sans", *([font] if font else [])]}
    with rc_context(rc):
        return _png(spread_figure(spread, title, t))
