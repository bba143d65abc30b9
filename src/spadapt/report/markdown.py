"""The report as Markdown (`report.md`), plots linked as files under `plots/`.

All text from results.json goes through `md_escape`: Markdown punctuation is backslash-escaped
and `<`, `>`, `&` become entities, so a label cannot inject markup or HTML into a renderer.
"""

from __future__ import annotations

import re

from . import content
from .i18n import strings
from .results import Results
from .summary import recommend, summary_text

_SPECIAL = re.compile(r"([\\`*\[\]|#~])")
_LOOSE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")  # may open emphasis


def md_escape(text: str) -> str:
    """`text` as literal Markdown on one line."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return _LOOSE_UNDERSCORE.sub(r"\\_", text)


def render(results: Results, lang: str = "en") -> str:
    """The whole report in Markdown; images are `plots/<name>.png` next to report.md."""
    s = strings(lang, results.metric)
    out: list[str] = [f"# {md_escape(content.title(results, lang))}", ""]
    out += _summary(results, lang)
    out += _table(results, lang)
    drawn = content.plot_names(results)
    out += [f"## {md_escape(s['h_accuracy_plot'])}", ""]
    out += [_image("accuracy", s["p_accuracy_title"]) if "accuracy" in drawn
            else md_escape(s["accuracy_none"]), ""]
    out += [f"## {md_escape(s['h_curves'])}", ""]
    out += [_image("curves", s["h_curves"]) if "curves" in drawn
            else md_escape(s["curves_none"]), ""]
    rec = recommend(results)
    if "confusion" in drawn and rec is not None:
        heading = s["h_confusion"].format(name=rec.name)
        out += [f"## {md_escape(heading)}", "", _image("confusion", heading), ""]
    spread = content.spread_method(results)
    if spread is not None and "spread" in drawn:
        heading = s["h_spread"].format(name=spread.name)
        out += [f"## {md_escape(heading)}", "", _image("spread", heading), ""]
    out += _answers(results, lang)
    search = content.search_lines(results, lang)
    if search:
        out += [f"## {md_escape(s['h_search'])}", ""]
        for line in search:
            out += [md_escape(line), ""]
        if "search" in drawn:
            out += [_image("search", s["p_search_title"]), ""]
    out += _data_quality(results, lang)
    out += [f"## {md_escape(s['h_footer'])}", ""]
    out += [f"- {md_escape(k)}: {md_escape(v)}" for k, v in content.footer(results, lang)]
    return "\n".join(out) + "\n"


def _image(name: str, alt: str) -> str:
    return f"![{md_escape(alt)}](plots/{content.PLOT_FILES[name]})"


def _summary(results: Results, lang: str) -> list[str]:
    s = strings(lang, results.metric)
    text = summary_text(results, lang, md_escape, lambda name: f"**{name}**")
    out = [f"## {md_escape(s['h_summary'])}", "", text.headline, "", f"*{text.rule}*", ""]
    if text.metric_note:
        out += [text.metric_note, ""]
    if text.failures:
        out += [f"- {line}" for line in text.failures] + [""]
    if text.vs_full_intro and text.vs_full:
        out += [text.vs_full_intro, ""] + [f"- {line}" for line in text.vs_full] + [""]
    if text.costs:
        out += [text.cost_intro, ""] + [f"- {line}" for line in text.costs] + [""]
    return out


def _table(results: Results, lang: str) -> list[str]:
    s = strings(lang, results.metric)
    t = content.table(results, lang)
    out = [f"## {md_escape(s['h_table'])}", "",
           "| " + " | ".join(md_escape(h) for h in t.header) + " |",
           "|" + "---|" + "---:|" * (len(t.header) - 1)]
    for row in t.rows:
        name = md_escape(row.name)
        if row.recommended:
            name = f"★ **{name}** ({md_escape(s['recommended'])})"
        if row.description:
            name += f" — {md_escape(row.description)}"
        if row.error is not None:
            cells = [f"**{md_escape(row.error)}**"] + ["—"] * (len(t.header) - 2)
        else:
            cells = [md_escape(c) for c in row.cells]
        out.append("| " + " | ".join([name, *cells]) + " |")
    return out + ["", md_escape(t.note), ""]


def _data_quality(results: Results, lang: str) -> list[str]:
    s = strings(lang, results.metric)
    dq = content.data_quality(results, lang)
    out = [f"## {md_escape(s['h_data'])}", ""]
    out += [md_escape(dq.rows), "", md_escape(dq.rejected_count), ""]
    if dq.rejected_intro:
        out += [md_escape(dq.rejected_intro), ""]
    if dq.rejected:
        out += [f"- {md_escape(line)}" for line in dq.rejected] + [""]
    out += [md_escape(dq.labels), ""]
    return out + ([md_escape(dq.truncated), ""] if dq.truncated else [])


def _answers(results: Results, lang: str) -> list[str]:
    """Each sample prompt as a small table: its reference, then every method's answer."""
    s = strings(lang, results.metric)
    blocks = content.answers(results, lang)
    if not blocks:
        return []
    out = [f"## {md_escape(s['h_answers'])}", "",
           md_escape(s["answers_intro"].format(count=len(blocks))), ""]
    for i, block in enumerate(blocks, 1):
        out += [f"### {i}. {md_escape(block.prompt)}", "",
                f"| {md_escape(s['a_method'])} | {md_escape(s['a_answer'])} |", "|---|---|",
                f"| *{md_escape(s['a_reference'])}* | {md_escape(block.reference)} |"]
        out += [f"| {md_escape(name)} | {md_escape(answer)} |" for name, answer in block.answers]
        out.append("")
    return out
