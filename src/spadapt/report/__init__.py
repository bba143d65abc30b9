"""`spadapt.report`: a PoC run's `results.json` → `report.md` + self-contained `report.html`.

    from spadapt.report import write_report
    paths = write_report(Path("runs/poc1"), lang="ja")   # {"markdown", "html", "plots/..."}

The report opens with a plain-language recommendation (summary.py states the rule), then the
results table, an accuracy-vs-stored-parameters plot, training curves, the recommended
method's confusion matrix, data quality and run details. Languages: "en" (default) and
"ja" (i18n.py). Every file is written atomically (temporary file + `os.replace`).

Modules: results.py (read and check results.json), summary.py (recommendation and its
sentences), content.py (table, plot list, data quality, footer as plain text), plots.py
(matplotlib, Agg), markdown.py and html.py (the two renderers; html.py fills
templates/report.html.jinja), i18n.py (strings), fmt.py (units, also used by the benchmarks'
page). Importing the package, or `spadapt.report.fmt`, loads neither matplotlib nor jinja2:
plots.py is imported when plots are drawn, the template when a page is rendered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import atomic
from . import html as _html
from . import markdown as _markdown
from .content import PLOT_FILES
from .i18n import LANGUAGES, strings
from .results import RESULTS_FILE, ReportError, Results, load_results, parse_results
from .summary import TOLERANCE, recommend

__all__ = ["LANGUAGES", "RESULTS_FILE", "TOLERANCE", "ReportError", "Results", "load_results",
           "parse_results", "recommend", "render_html", "render_markdown", "write_report"]

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"


def _as_results(results: Results | dict[str, Any]) -> Results:
    return results if isinstance(results, Results) else parse_results(results)


def render_markdown(results: Results | dict[str, Any], lang: str = "en") -> str:
    """The report in Markdown; it links plots as `plots/<name>.png` (write_report writes them)."""
    strings(lang)
    return _markdown.render(_as_results(results), lang)


def render_html(results: Results | dict[str, Any], lang: str = "en") -> str:
    """The report as one self-contained HTML page with the plots embedded as base64 PNGs."""
    from .plots import render_plots

    strings(lang)
    res = _as_results(results)
    return _html.render(res, lang, render_plots(res, lang))


def write_report(run_dir: Path, lang: str = "en") -> dict[str, Path]:
    """Read `run_dir/results.json`; write report.md, report.html and plots/*.png atomically.

    Returns {"markdown": path, "html": path, and one "plot:<name>" entry per plot}. Raises
    `ReportError` (a SpadaptError) for an unknown language or a missing/malformed results.json.
    """
    from .plots import render_plots

    strings(lang)
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    images = render_plots(results, lang)
    paths: dict[str, Path] = {}
    if images:
        (run_dir / PLOTS_DIR).mkdir(exist_ok=True)
    for name, png in images.items():
        paths[f"plot:{name}"] = _write_atomic(run_dir / PLOTS_DIR / PLOT_FILES[name], png)
    paths["markdown"] = _write_atomic(run_dir / REPORT_MD,
                                      _markdown.render(results, lang).encode("utf-8"))
    paths["html"] = _write_atomic(run_dir / REPORT_HTML,
                                  _html.render(results, lang, images).encode("utf-8"))
    return paths


def _write_atomic(path: Path, data: bytes) -> Path:
    atomic.write_file(path, data)
    return path
