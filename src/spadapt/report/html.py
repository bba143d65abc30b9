"""The report as one self-contained HTML page (`report.html`), from the Jinja template
`templates/report.html.jinja`.

Opens offline: the CSS is in the template, there is no script, and the plots are PNGs inlined
as base64 `data:` URIs. Fonts are the reader's own system fonts (a list that covers Japanese
on Windows, macOS and Linux). The template is autoescaped, so all text, fixed or from
results.json, is HTML-escaped and a label such as `<script>` shows as text; the only values
it prints as they are, the summary sentences, are `markupsafe.Markup` that summary.py built
from parts escaped with `markupsafe.escape`.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from . import content
from .i18n import strings
from .results import Results
from .summary import recommend, summary_text

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.jinja"


@dataclass
class Plot:
    name: str  # content.PLOT_FILES key, also the <img> id "plot-<name>"
    alt: str  # the image's alternative text (the confusion matrix's is also its heading)
    data: str  # the PNG, base64


@functools.cache
def _template() -> jinja2.Template:
    import jinja2  # here, so that importing spadapt.report (or its fmt) stays light

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("spadapt.report", "templates"), autoescape=True,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    return environment.get_template(TEMPLATE)


def _strong(name: Markup) -> Markup:
    """A method name (already escaped) emphasised in a summary sentence."""
    return Markup("<strong>%s</strong>") % name


def render(results: Results, lang: str, images: dict[str, bytes]) -> str:
    """The page; `images` maps plot names (content.PLOT_FILES keys) to PNG bytes."""
    s = strings(lang, results.metric)
    rec = recommend(results)
    alts = {"accuracy": s["p_accuracy_title"], "curves": s["h_curves"],
            "search": s["p_search_title"]}
    if rec is not None:
        alts["confusion"] = s["h_confusion"].format(name=rec.name)
    spread = content.spread_method(results)
    if spread is not None:
        alts["spread"] = s["h_spread"].format(name=spread.name)
    plots = {name: Plot(name, alt, base64.b64encode(images[name]).decode("ascii"))
             for name, alt in alts.items() if images.get(name)}
    summary = summary_text(results, lang, escape, _strong)
    return _template().render(
        lang=lang, s=s, title=content.title(results, lang), summary=summary,
        table=content.table(results, lang), plots=plots,
        search=content.search_lines(results, lang), answers=content.answers(results, lang),
        data_quality=content.data_quality(results, lang), footer=content.footer(results, lang))
