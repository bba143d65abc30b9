"""The report as one self-contained HTML page (`report.html`).

Opens offline: the CSS is embedded, there is no script, and the plots are PNGs inlined as
base64 `data:` URIs. Fonts are the reader's own system fonts (a list that covers Japanese on
Windows, macOS and Linux). All text, fixed or from results.json, goes through
`html.escape`, so a label such as `<script>` shows as text.
"""

from __future__ import annotations

import base64
from html import escape

from . import content
from .i18n import strings
from .results import Results
from .summary import recommend, summary_text

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Yu Gothic UI",
       Meiryo, "Noto Sans CJK JP", "IPAexGothic", Roboto, Arial, sans-serif;
       color: #1d2433; background: #fff; max-width: 1100px; margin: 2rem auto;
       padding: 0 1.5rem; line-height: 1.6; }
h1 { font-size: 1.7rem; border-bottom: 3px solid #2d5be3; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d5dae3; }
.headline { font-size: 1.15rem; background: #eef3ff; border-left: 5px solid #2d5be3;
            padding: .8rem 1rem; border-radius: 4px; }
.rule { color: #556; font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; margin: .5rem 0; }
th, td { border: 1px solid #d5dae3; padding: .4rem .6rem; text-align: right; }
td { white-space: nowrap; }
th { background: #f1f3f7; text-align: center; }
td.method, td.error { text-align: left; white-space: normal; }
.desc { display: block; color: #667; font-size: .8rem; }
tr.recommended td { background: #fff6d6; font-weight: 600; }
td.error { color: #a3201b; }
.note { color: #667; font-size: .85rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ec; }
ul.rejected { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; }
dl.footer { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
            color: #445; font-size: .9rem; }
dl.footer dt { font-weight: 600; }
dl.footer dd { margin: 0; }
"""


def render(results: Results, lang: str, images: dict[str, bytes]) -> str:
    """The page; `images` maps plot names (plots.PLOT_FILES keys) to PNG bytes."""
    s = strings(lang)
    title = escape(content.title(results, lang))
    parts = [f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
             f"<h1>{title}</h1>"]
    parts += _summary(results, lang)
    parts += _table(results, lang)
    parts.append(f"<h2>{escape(s['h_accuracy_plot'])}</h2>")
    parts.append(_figure(images.get("accuracy"), s["p_accuracy_title"], "accuracy")
                 or f"<p>{escape(s['accuracy_none'])}</p>")
    parts.append(f"<h2>{escape(s['h_curves'])}</h2>")
    parts.append(_figure(images.get("curves"), s["h_curves"], "curves")
                 or f"<p>{escape(s['curves_none'])}</p>")
    rec = recommend(results)
    if rec is not None and images.get("confusion"):
        heading = s["h_confusion"].format(name=rec.name)
        parts += [f"<h2>{escape(heading)}</h2>", _figure(images["confusion"], heading,
                                                         "confusion")]
    parts += _data_quality(results, lang)
    parts.append(f"<h2>{escape(s['h_footer'])}</h2>\n<dl class=\"footer\">")
    parts += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
              for k, v in content.footer(results, lang)]
    parts.append("</dl>\n</body>\n</html>\n")
    return "\n".join(parts)


def _figure(png: bytes | None, alt: str, name: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img id="plot-{name}" alt="{escape(alt)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _summary(results: Results, lang: str) -> list[str]:
    s = strings(lang)
    text = summary_text(results, lang, escape, lambda name: f"<strong>{name}</strong>")
    out = [f"<h2>{escape(s['h_summary'])}</h2>", f'<p class="headline">{text.headline}</p>',
           f'<p class="rule">{text.rule}</p>']
    if text.failures:
        out.append(_list(text.failures, 'class="failures"'))
    if text.vs_full_intro and text.vs_full:
        out += [f"<p>{text.vs_full_intro}</p>", _list(text.vs_full)]
    if text.costs:
        out += [f"<p>{text.cost_intro}</p>", _list(text.costs)]
    return out


def _list(items: list[str], attrs: str = "") -> str:
    """A <ul> of items that are already escaped."""
    opening = f"<ul {attrs}>" if attrs else "<ul>"
    return opening + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _table(results: Results, lang: str) -> list[str]:
    s = strings(lang)
    t = content.table(results, lang)
    out = [f"<h2>{escape(s['h_table'])}</h2>", '<table id="results">',
           "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in t.header)
           + "</tr></thead>", "<tbody>"]
    for row in t.rows:
        name = escape(row.name)
        if row.recommended:
            name = f"★ {name} ({escape(s['recommended'])})"
        if row.description:
            name += f'<span class="desc">{escape(row.description)}</span>'
        cls = ' class="recommended"' if row.recommended else ""
        if row.error is not None:
            cells = f'<td class="error" colspan="{len(t.header) - 1}">{escape(row.error)}</td>'
        else:
            cells = "".join(f"<td>{escape(c)}</td>" for c in row.cells)
        out.append(f'<tr{cls}><td class="method">{name}</td>{cells}</tr>')
    out += ["</tbody></table>", f'<p class="note">{escape(t.note)}</p>']
    return out


def _data_quality(results: Results, lang: str) -> list[str]:
    s = strings(lang)
    dq = content.data_quality(results, lang)
    out = [f"<h2>{escape(s['h_data'])}</h2>"]
    out += [f"<p>{escape(dq.rows)}</p>", f"<p>{escape(dq.rejected_count)}</p>"]
    if dq.rejected_intro:
        out.append(f"<p>{escape(dq.rejected_intro)}</p>")
    if dq.rejected:
        out.append(_list([escape(line) for line in dq.rejected], 'class="rejected"'))
    return out + [f"<p>{escape(dq.labels)}</p>"]
