"""spadapt.report: results.json → report.md + self-contained report.html.

The fixture tests/fixtures/results_example.json is a plausible six-method PoC run
(full, lora, adapter, sparse, large_sparse, sparse_delta). The last test opens the HTML in
headless Chromium (`apt-get install -y chromium`) and skips when no Chromium is installed.
"""

from __future__ import annotations

import copy
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from string import Formatter
from typing import Any

import numpy as np
import pytest

from browser import CHROMIUM, run_chromium
from spadapt.errors import SpadaptError
from spadapt.report import (
    ReportError,
    fmt,
    load_results,
    parse_results,
    plots,
    recommend,
    render_html,
    render_markdown,
    write_report,
)
from spadapt.report.i18n import strings

FIXTURE = Path(__file__).parent / "fixtures" / "results_example.json"
METHODS = ("full", "lora", "adapter", "sparse", "large_sparse", "sparse_delta")
EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
EN = strings("en")  # sentences are checked as the string table words them, not as pinned prose


@pytest.fixture
def example() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def run_dir(tmp_path: Path, example: dict[str, Any]) -> Path:
    (tmp_path / "results.json").write_text(json.dumps(example), encoding="utf-8")
    return tmp_path


def _method(name: str, accuracy: float, nonzero: int, seconds: float = 10.0,
            **extra: Any) -> dict[str, Any]:
    return {"name": name, "accuracy": accuracy, "macro_f1": accuracy, "base_params": 1000,
            "trainable_params": nonzero, "nonzero_params": nonzero, "adapter_bytes": 4 * nonzero,
            "train_seconds": seconds, "step_seconds_median": 0.1,
            "peak_memory_bytes": 10**9, "adapter_dir": f"adapters/{name}", **extra}


def _minimal(methods: list[dict[str, Any]]) -> dict[str, Any]:
    """Only what DESIGN.md's contract requires: no task, machine, history or matrices."""
    return {"dataset": {"name": "d", "train_rows": 10, "eval_rows": 5, "labels": ["a", "b"],
                        "rejected_rows": 0},
            "base_model": {"name": "m", "parameters": 1000}, "methods": methods}


def _md_methods(md: str) -> list[tuple[str, bool]]:
    """(method name, recommended) of each row of report.md's results table, in order."""
    lines = md.splitlines()
    start = lines.index(f"## {EN['h_table']}") + 4  # heading, blank line, header, separator
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        cell = re.split(r"(?<!\\)\|", line)[1].strip().split(" — ")[0]  # before the description
        recommended = cell.startswith("★ ")
        name = cell.removeprefix("★ ").removesuffix(f" ({EN['recommended']})")
        rows.append((name.removeprefix("**").removesuffix("**") if recommended else name,
                     recommended))
    return rows


def _html_methods(page: str) -> list[str]:
    """The method cell of each row of report.html's results table (before its description)."""
    return re.findall(r'<td class="method">(.*?)(?:<span class="desc">|</td>)', page)


# --- content --------------------------------------------------------------------------------

def test_markdown_and_html_name_every_method_and_the_recommendation(example):
    md = render_markdown(example)
    page = render_html(example)
    # every method has its own row, in the order of results.json; sparse is recommended
    assert _md_methods(md) == [(name, name == "sparse") for name in METHODS]
    recommended = f"★ sparse ({EN['recommended']})"
    assert _html_methods(page) == [recommended if name == "sparse" else name
                                   for name in METHODS]
    assert f'<tr class="recommended"><td class="method">{recommended}<' in page

    def headline(name: str) -> str:  # 0.3 points under full, 1/320 of its size, 1.4× faster
        return EN["pick_vs_full"].format(
            name=name, acc_vs_full=EN["acc_below_full"].format(points="0.3"), size="284 KB",
            full_size="90.9 MB", ratio=EN["ratio_smaller"].format(ratio="320"),
            speed=EN["faster"].format(ratio="1.4"))

    assert f"\n{headline('**sparse**')}\n" in md
    assert f'<p class="headline">{headline("<strong>sparse</strong>")}</p>' in page
    assert f"*{EN['rule']}*" in md and f'<p class="rule">{EN["rule"]}</p>' in page
    # what each gives up against full fine-tuning, and what it costs
    sparse_delta = EN["vs_full_item"].format(name="sparse_delta",
                                             delta=EN["delta_below"].format(points="1.0"))
    assert f"\n- {sparse_delta}\n" in md and f"<li>{sparse_delta}</li>" in page
    cost = EN["cost_item"].format(name="sparse", time="4 min 58 s", step="129 ms",
                                  throughput=EN["throughput"].format(eps="80.5"),
                                  memory="1.19 GB", size="284 KB")
    assert f"\n- {cost}\n" in md and f"<li>{cost}</li>" in page


def test_sections_come_in_the_agreed_order(example):
    md = render_markdown(example)
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["## Summary", "## Results", "## Accuracy vs stored parameters",
                        "## Training curves", "## Confusion matrix of sparse",
                        "## Data quality", "## Run details"]
    assert "](plots/accuracy_vs_nonzero.png)" in md
    assert "- tickets_train.csv:57 — text is empty" in md
    assert "Rejected rows: 7." in md
    assert "Labels (4): billing, shipping, returns, technical" in md
    assert "- Machine: AMD EPYC 7B13, 16 threads, GPU: NVIDIA A10G (24 GB), torch 2.6.0" in md


def test_html_is_self_contained(example):
    page = render_html(example)
    assert page.count('src="data:image/png;base64,') == 3
    for needle in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert needle not in page, needle


def test_japanese_report_is_in_japanese(example):
    md = render_markdown(example, "ja")
    page = render_html(example, "ja")
    assert "おすすめは **sparse** です。精度はフルファインチューニング比 −0.3 ポイント" in md
    for text in ("## まとめ", "## 結果一覧", "## データ品質", "## 実行環境", "| 手法 | 精度 |",
                 "★ **sparse** (推奨)", "6 分 52 秒", "選び方:"):
        assert text in md, text
    assert '<html lang="ja">' in page
    assert "<h2>まとめ</h2>" in page and "学習曲線" in page
    assert "Summary" not in md and "Summary" not in page


def test_every_language_has_every_string_with_the_same_placeholders():
    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(template) if name}

    en, ja = strings("en"), strings("ja")
    assert set(en) == set(ja)
    assert all(fields(en[key]) == fields(ja[key]) for key in en)


def test_unknown_language_is_refused_listing_the_known_ones(example, run_dir):
    for call in (lambda: render_markdown(example, "fr"), lambda: render_html(example, "de"),
                 lambda: write_report(run_dir, "EN")):
        with pytest.raises(SpadaptError, match='"en", "ja"'):
            call()
    assert not (run_dir / "report.md").exists()


def test_user_text_is_escaped(example):
    evil = copy.deepcopy(example)
    evil["dataset"]["name"] = EVIL
    evil["dataset"]["labels"][0] = EVIL
    evil["dataset"]["rejected"][0] = {"file": EVIL, "line": 3, "reason": "<b>&amp;"}
    evil["methods"][1]["description"] = EVIL
    evil["methods"][2] = {"name": EVIL, "error": EVIL}
    page = render_html(evil)
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;&amp;amp;" in page
    md = render_markdown(evil)
    assert "<script" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # A `$` or `|` in a label neither starts mathtext in a plot nor breaks the table.
    evil["dataset"]["labels"][1] = "$x$ | y"
    assert render_markdown(evil).count("\\|") >= 1
    assert set(plots.render_plots(parse_results(evil), "en")) == {"accuracy", "curves",
                                                                   "confusion"}


def test_failed_method_shows_its_error_and_no_metrics(example):
    failed = copy.deepcopy(example)
    failed["methods"][5] = {"name": "sparse_delta", "error": "CUDA out of memory at step 12"}
    md = render_markdown(failed)
    row = next(line for line in md.splitlines() if line.startswith("| sparse_delta"))
    assert "failed: CUDA out of memory at step 12" in row and "%" not in row
    assert "- sparse_delta failed: CUDA out of memory at step 12" in md
    assert "sparse_delta: trains" not in md
    page = render_html(failed)
    assert '<td class="error" colspan="8">failed: CUDA out of memory at step 12</td>' in page


def test_report_html_on_disk_shows_user_text_escaped(example, tmp_path):
    evil = copy.deepcopy(example)
    evil["dataset"]["name"] = EVIL
    evil["dataset"]["labels"][0] = EVIL
    evil["dataset"]["rejected"][0]["file"] = EVIL
    evil["methods"][3]["name"] = EVIL  # the recommended method: also in the headline and plots
    evil["methods"][3]["description"] = EVIL
    (tmp_path / "results.json").write_text(json.dumps(evil), encoding="utf-8")
    page = write_report(tmp_path)["html"].read_text(encoding="utf-8")
    assert "<script" not in page and "&amp;lt;" not in page  # escaped once, not twice
    recommended = f"★ {EVIL_ESCAPED} ({EN['recommended']})"
    assert _html_methods(page)[3] == recommended  # the results table's method cell
    assert f'<span class="desc">{EVIL_ESCAPED}</span>' in page
    assert f"<title>{EN['title'].format(dataset=EVIL_ESCAPED, model=evil['base_model']['name'])}" \
           in page
    assert f'<p class="headline">{EN["pick_vs_full"].split("{name}")[0]}' \
           f"<strong>{EVIL_ESCAPED}</strong>" in page  # the summary's markup stays markup
    assert f"<h2>{EN['h_confusion'].format(name=EVIL_ESCAPED)}</h2>" in page
    assert f'alt="{EN["h_confusion"].format(name=EVIL_ESCAPED)}"' in page
    assert f"<li>{EVIL_ESCAPED}:57 — " in page  # the rejected row's file name
    assert f": {EVIL_ESCAPED}, shipping" in page  # the labels


# --- the recommendation rule ------------------------------------------------------------------

def test_recommendation_is_the_smallest_method_within_one_point_of_the_best():
    data = _minimal([
        _method("full", 0.900, 10**6),
        _method("big", 0.905, 10**5),  # the best accuracy
        _method("edge", 0.895, 10**4),  # exactly 1 point below the best: still in
        _method("small", 0.8949, 10**3),  # just outside
        {"name": "tiny", "error": "diverged", "nonzero_params": 1},  # failed: never picked
    ])
    assert recommend(parse_results(data)).name == "edge"
    md = render_markdown(data)
    assert EN["pick_vs_full"].format(
        name="**edge**", acc_vs_full=EN["acc_below_full"].format(points="0.5"), size="40.0 KB",
        full_size="4.00 MB", ratio=EN["ratio_smaller"].format(ratio="100"),
        speed=EN["as_fast"]) in md


def test_recommendation_ties_and_edge_cases():
    # Same stored size: the more accurate wins, then the faster.
    tie = _minimal([_method("a", 0.90, 100, 20), _method("b", 0.91, 100, 30),
                    _method("c", 0.91, 100, 10)])
    assert recommend(parse_results(tie)).name == "c"
    # Without full fine-tuning the summary compares with the best method instead.
    md = render_markdown(tie)
    assert "Pick **c**: accuracy 91.0% (the best accuracy)" in md
    assert "given up against full" not in md
    # Full wins when nothing smaller comes within a point.
    full = _minimal([_method("full", 0.95, 10**6), _method("lora", 0.90, 10**4)])
    assert "Pick **full**: no method that stores fewer parameters" in render_markdown(full)
    # Every method failed: no recommendation, and the report still renders.
    dead = _minimal([{"name": "full", "error": "boom"}, {"name": "lora", "error": "bang"}])
    assert recommend(parse_results(dead)) is None
    assert "there is no recommendation" in render_markdown(dead)
    assert "No method finished with stored parameters to plot." in render_markdown(dead)
    assert "boom" in render_html(dead)


# --- writing files ----------------------------------------------------------------------------

def test_write_report_writes_md_html_and_plots_without_temp_files(run_dir):
    paths = write_report(run_dir)
    assert paths["markdown"] == run_dir / "report.md"
    assert paths["html"] == run_dir / "report.html"
    names = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    assert names == ["plots", "plots/accuracy_vs_nonzero.png", "plots/confusion_matrix.png",
                     "plots/training_curves.png", "report.html", "report.md", "results.json"]
    for key in ("plot:accuracy", "plot:curves", "plot:confusion"):
        assert paths[key].read_bytes().startswith(b"\x89PNG")
    # A second write (e.g. in Japanese) replaces the files in place.
    write_report(run_dir, "ja")
    assert "まとめ" in (run_dir / "report.md").read_text(encoding="utf-8")
    assert len(list(run_dir.rglob("*"))) == len(names)


def test_a_failed_write_leaves_the_old_report_and_no_temp_file(run_dir, monkeypatch):
    write_report(run_dir)
    before = (run_dir / "report.html").read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(run_dir, "ja")
    assert (run_dir / "report.html").read_bytes() == before
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".")]


def test_minimal_results_render_without_optional_parts(tmp_path):
    data = _minimal([_method("lora", 0.8, 100), _method("sparse", 0.795, 10)])
    (tmp_path / "results.json").write_text(json.dumps(data))
    paths = write_report(tmp_path)
    assert set(paths) == {"markdown", "html", "plot:accuracy"}
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "No training history was recorded." in md
    assert "Confusion matrix" not in md and "No rows were rejected." in md
    assert "- Machine: unknown" in md and "- Task: classification" in md


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (None, "results.json: not found"),
    ("{not json", "results.json: not valid JSON (line 1, column 2"),
    ("[]", "the top level must be a JSON object"),
    ('{"dataset": {}, "base_model": {}, "methods": []}', "dataset.labels must be a list"),
])
def test_bad_results_json_names_the_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    with pytest.raises(ReportError, match="results.json") as info:
        write_report(tmp_path)
    assert str(tmp_path) in str(info.value) and message in str(info.value)
    assert isinstance(info.value, SpadaptError)
    assert not (tmp_path / "report.md").exists()


def test_bad_fields_are_named(example, tmp_path):
    bad = copy.deepcopy(example)
    bad["methods"][3]["accuracy"] = "high"
    (tmp_path / "results.json").write_text(json.dumps(bad))
    with pytest.raises(ReportError, match=r"methods\[3\]\.accuracy must be a number"):
        load_results(tmp_path)
    bad = copy.deepcopy(example)
    del bad["methods"][0]["nonzero_params"]
    with pytest.raises(ReportError, match=r"methods\[0\]\.nonzero_params is missing"):
        render_markdown(bad)
    bad = copy.deepcopy(example)
    bad["methods"][3]["confusion_matrix"] = [[1, 2], [3, 4]]
    with pytest.raises(ReportError, match=r"confusion_matrix must be a 4×4"):
        render_html(bad)


# --- units and fonts --------------------------------------------------------------------------

def test_human_units():
    en = {"u_seconds": "{s} s", "u_minutes": "{m} min {s} s", "u_hours": "{h} h {m} min",
          "u_ms": "{ms} ms"}
    assert [fmt.size(n) for n in (512, 283_516, 90_859_032, 1_950_000_000)] == \
        ["512 B", "284 KB", "90.9 MB", "1.95 GB"]
    assert [fmt.count(n) for n in (950, 61_204, 22_714_758, 1_300_000_000)] == \
        ["950", "61.2 k", "22.7 M", "1.30 B"]
    assert [fmt.duration(x, en) for x in (8.44, 42.4, 130.2, 3900)] == \
        ["8.4 s", "42 s", "2 min 10 s", "1 h 5 min"]
    assert fmt.step(0.1294, en) == "129 ms" and fmt.ratio(321.4) == "320"
    assert fmt.percent(0.9134) == "91.3%" and fmt.points(-0.0031) == "0.3"


def test_japanese_plots_fall_back_to_english_without_a_cjk_font(example, monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    text, font = plots.plot_strings("ja")
    assert font is None and text["p_accuracy_axis"] == "Accuracy"
    assert set(plots.render_plots(parse_results(example), "ja")) == {"accuracy", "curves",
                                                                      "confusion"}
    assert "まとめ" in render_html(example, "ja")  # the page itself stays Japanese


def test_japanese_plots_use_a_cjk_font_when_one_is_installed():
    font = plots.cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (apt-get install -y fonts-ipaexfont-gothic)")
    text, used = plots.plot_strings("ja")
    assert used == font and text["p_accuracy_axis"] == "精度"


# --- the page in a real browser ---------------------------------------------------------------

# matplotlib's first six colours (tab10), one per method, and the darkest "Blues" cell.
PLOT_COLOURS = {"C0": (31, 119, 180), "C1": (255, 127, 14), "C2": (44, 160, 44),
                "C3": (214, 39, 40), "C4": (148, 103, 189), "C5": (140, 86, 75),
                "confusion": (8, 48, 107)}


class _PageParser(HTMLParser):
    """Collects the results table's rows (cell texts) and the <img> sources."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._in_results = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "results":
            self._in_results = True
        elif self._in_results and tag == "tr":
            self.rows.append([])
        elif self._in_results and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_results = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


@pytest.mark.browser
# In CI (CI=true) a missing Chromium is a failure, not a skip: `make test` installs it there.
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="no Chromium binary on PATH; install it with "
                    "`apt-get update && apt-get install -y chromium`")
def test_report_renders_table_and_plots_in_headless_chromium(run_dir, tmp_path):
    from PIL import Image  # matplotlib depends on Pillow

    page = write_report(run_dir)["html"].resolve().as_uri()
    dom = run_chromium(tmp_path, "--dump-dom", page).stdout
    parsed = _PageParser()
    parsed.feed(dom)
    rows = [r for r in parsed.rows if r]
    assert len(rows) == len(METHODS)
    for row, name in zip(rows, METHODS, strict=True):
        assert row[0].removeprefix("★ ").startswith(name) and len(row) == 9
    assert rows[3][0].startswith("★ sparse (recommended)")
    assert len(parsed.images) == 3
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)

    shot = tmp_path / "page.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,5000", page)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (5000, 1200, 3)
    white = (pixels.min(axis=2) > 245).mean()
    assert white < 0.97, f"the screenshot is blank ({white:.1%} white)"
    # Plot colours appear only if the embedded PNGs decoded (the CSS uses none of them).
    for name, colour in PLOT_COLOURS.items():
        hits = int((np.abs(pixels - np.array(colour)).max(axis=2) <= 6).sum())
        assert hits > (2000 if name == "confusion" else 300), (name, hits)


@pytest.mark.parametrize(("xs", "scale"), [([900_000, 1_100_000], "linear"),
                                            ([10_000, 1_000_000], "log"),
                                            ([0, 5_000, 9_000], "linear")])
def test_nonzero_axis_is_log_only_over_a_wide_range(xs, scale):
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    from spadapt.report.plots import set_nonzero_axis

    axes = Figure().add_subplot()
    set_nonzero_axis(axes, xs)
    assert axes.get_xscale() == scale
    if scale == "linear":  # 1.1M, not 1.1e6 or overlapping powers of ten
        assert isinstance(axes.xaxis.get_major_formatter(), EngFormatter)
