"""`spadapt poc` on prompt/response data (`--task generate`) with a tiny Llama: results.json's
fields, the report's answers side by side (Markdown, HTML, a headless browser), resume, bad
rows, truncated prompts, the metric rule, and a decoder used as a classifier."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser import CHROMIUM, run_chromium
from generate_fixtures import model_folder, qa_rows, write_jsonl
from spadapt.cli import app
from spadapt.report import parse_results, render_markdown
from spadapt.report.results import ReportError
from spadapt.tasks.answer_metrics import exact_match, normalise_answer, rouge_l, short_answers

INJECTION = "<script>alert(1)</script> what is the capital of peru ?"
GENERATE_METHODS = ["base", "full", "lora", "shira", "sparse_delta", "sparse"]


def _poc(*args: str) -> object:
    return CliRunner().invoke(app, ["poc", "--budget", "smoke", "--no-progress", *args])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generate")
    rows = qa_rows()
    return {"root": root, "model": model_folder(root / "model"),
            "train": write_jsonl(root / "train.jsonl", rows[:18]),
            "eval": write_jsonl(root / "eval.jsonl",
                                [{"prompt": INJECTION, "response": "lima"}] + rows[18:])}


@pytest.fixture(scope="module")
def generate_run(workspace) -> Path:
    out = workspace["root"] / "run"
    result = _poc("--data", str(workspace["train"]), "--eval-data", str(workspace["eval"]),
                  "--model", str(workspace["model"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_results_carry_every_generative_field(generate_run, workspace) -> None:
    results = json.loads((generate_run / "results.json").read_text())
    assert results["task"] == "generate" and results["dataset"]["labels"] == []
    # every reference is a word or a short sentence: exact match, and why
    assert (results["metric"], results["metric_reason"]) == ("exact_match", "short_answers")
    eval_rows = [json.loads(line) for line in workspace["eval"].read_text().splitlines()]
    assert results["samples"] == [{"prompt": r["prompt"], "reference": r["response"]}
                                  for r in eval_rows[:5]]
    assert [m["name"] for m in results["methods"]] == GENERATE_METHODS
    for method in results["methods"]:
        assert "error" not in method, method.get("error")
        assert method["task"] == "generate"
        assert method["accuracy"] == method["exact_match"]  # what the recommendation compares
        assert 0 <= method["rouge_l"] <= 1 and method["perplexity"] > 1
        assert method["perplexity"] == pytest.approx(2.718281828 ** method["eval_loss"])
        assert len(method["answers"]) == 5 and all(isinstance(a, str) for a in method["answers"])
        assert {"nonzero_params", "adapter_bytes", "train_seconds"} <= set(method)
    base, *trained = results["methods"]
    assert base["trained"] is False and base["nonzero_params"] == 0
    assert base["adapter_bytes"] == 0 and "step_seconds_median" not in base
    for method in trained:
        assert method["step_seconds_median"] > 0 and method["peak_memory_bytes"] > 0
        assert (generate_run / method["adapter_dir"]).is_dir()
    # LoRA's rank is set to match SHiRA's count of values (both r·(in+out) per layer)
    by_name = {m["name"]: m for m in trained}
    assert by_name["lora"]["nonzero_params"] == by_name["shira"]["nonzero_params"]
    assert "all linear layers" in by_name["lora"]["description"]


def test_report_shows_answers_side_by_side_escaped(generate_run) -> None:
    md = (generate_run / "report.md").read_text()
    page = (generate_run / "report.html").read_text()
    results = json.loads((generate_run / "results.json").read_text())
    assert "## Answers side by side" in md and "Answers side by side" in page
    assert "<script>" not in md and "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for method in results["methods"]:
        for answer in method["answers"]:
            if answer.strip() and "<" not in answer and ">" not in answer:
                assert answer.strip() in page
    assert "scored by exact match" in md and "Exact match vs stored parameters" in md
    assert "The base model as it is (not trained) is shown for reference" in md
    assert "★ base" not in md  # the base is never the recommendation
    assert "| base — The base model, untouched (before adaptation) |" in md
    assert "not trained" in md


def test_japanese_generative_report(generate_run) -> None:
    results = json.loads((generate_run / "results.json").read_text())
    md = render_markdown(results, "ja")
    assert "## 回答の比較" in md and "完全一致率" in md and "学習なし" in md


class _AnswerTables(HTMLParser):
    """The rows (cell texts) of each answers table of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.scripts = 0
        self._in = self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag == "table" and dict(attrs).get("class") == "answers":
            self._in = True
            self.tables.append([])
        elif self._in and tag == "tr":
            self.tables[-1].append([])
        elif self._in and tag in ("td", "th"):
            self._cell = True
            self.tables[-1][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in = False
        elif tag in ("td", "th"):
            self._cell = False

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.tables[-1][-1][-1] += data


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="no Chromium binary on PATH; install it with "
                    "`apt-get update && apt-get install -y chromium`")
def test_answers_render_in_headless_chromium(generate_run, tmp_path) -> None:
    dom = run_chromium(tmp_path, "--dump-dom", (generate_run / "report.html").as_uri()).stdout
    parsed = _AnswerTables()
    parsed.feed(dom)
    assert parsed.scripts == 0  # the prompt's <script> is text, not an element
    assert INJECTION in dom.replace("&lt;", "<").replace("&gt;", ">")
    results = json.loads((generate_run / "results.json").read_text())
    assert len(parsed.tables) == 5
    for i, table in enumerate(parsed.tables):
        header, reference, *rows = table
        assert reference[1] == results["samples"][i]["reference"]
        assert [row[0] for row in rows] == GENERATE_METHODS
        for row, method in zip(rows, results["methods"], strict=True):
            assert row[1] == (method["answers"][i].strip() or "(empty answer)")


def test_resume_keeps_finished_methods_and_runs_the_missing_one(generate_run) -> None:
    path = generate_run / "results.json"
    results = json.loads(path.read_text())
    before = {m["name"]: m for m in results["methods"]}
    results["methods"] = [m for m in results["methods"] if m["name"] != "shira"]
    path.write_text(json.dumps(results))
    workspace = generate_run.parent
    result = _poc("--data", str(workspace / "train.jsonl"), "--eval-data",
                  str(workspace / "eval.jsonl"), "--model", str(workspace / "model"),
                  "--out", str(generate_run), "--resume")
    assert result.exit_code == 0, result.output
    after = {m["name"]: m for m in json.loads(path.read_text())["methods"]}
    assert list(after) == GENERATE_METHODS
    for name in GENERATE_METHODS:
        if name != "shira":
            assert after[name] == before[name]  # kept as it was, not run again
    assert after["shira"]["answers"] == before["shira"]["answers"]  # same seed, same run


def test_empty_prompt_or_response_is_named_with_its_line(workspace, tmp_path) -> None:
    rows = qa_rows()[:12]
    rows[2] = {"prompt": "", "response": "paris"}
    rows[6] = {"prompt": "where is rome ?", "response": "   "}
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = _poc("--data", str(data), "--model", str(workspace["model"]),
                  "--methods", "base", "--out", str(tmp_path / "run"))
    assert result.exit_code != 0
    assert "bad.jsonl:3" in result.output and "bad.jsonl:7" in result.output
    assert "'prompt' is empty" in result.output and "only whitespace" in result.output

    result = _poc("--data", str(data), "--model", str(workspace["model"]), "--methods",
                  "base", "--skip-bad-rows", "--out", str(tmp_path / "skipped"))
    assert result.exit_code == 0, result.output
    md = (tmp_path / "skipped" / "report.md").read_text()
    assert "Rejected rows: 2." in md and "bad.jsonl:3" in md and "bad.jsonl:7" in md


def test_long_prompts_are_cut_from_the_left_and_counted(workspace, tmp_path) -> None:
    long_prompt = " ".join(["what is the capital of"] * 20) + " france ?"  # > 64 tokens
    rows = qa_rows()[:12] + [{"prompt": long_prompt, "response": "paris"}] * 2
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    out = tmp_path / "run"
    result = _poc("--data", str(data), "--eval-data", str(data), "--model",
                  str(workspace["model"]), "--methods", "base,sparse_delta", "--out", str(out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["max_length"] == 64
    assert results["dataset"]["truncated_prompts"] == 4  # 2 training rows, the same 2 evaluated
    assert results["dataset"]["train_rows"] == 14  # truncated, not dropped
    md = (out / "report.md").read_text()
    assert "4 prompts were longer than 64 tokens and were cut from the left" in md


def test_metric_option_and_long_answers_choose_rouge_l(workspace, tmp_path) -> None:
    rows = [{"prompt": r["prompt"], "response": r["response"] + " and that is all there is"}
            for r in qa_rows()[:12]]
    data = write_jsonl(tmp_path / "long_answers.jsonl", rows)
    out = tmp_path / "auto"
    result = _poc("--data", str(data), "--model", str(workspace["model"]), "--methods",
                  "base", "--out", str(out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert (results["metric"], results["metric_reason"]) == ("rouge_l", "long_answers")
    assert results["methods"][0]["accuracy"] == results["methods"][0]["rouge_l"]
    md = (out / "report.md").read_text()
    assert "scored by ROUGE-L" in md and "| Method | ROUGE-L | Exact match |" in md

    out = tmp_path / "chosen"
    result = _poc("--data", str(workspace["train"]), "--model", str(workspace["model"]),
                  "--methods", "base", "--metric", "rouge_l", "--no-chat-template",
                  "--out", str(out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert (results["metric"], results["metric_reason"]) == ("rouge_l", "option")


def test_a_scorer_reads_batches_of_the_runs_batch_size(workspace, tmp_path,
                                                       monkeypatch) -> None:
    """SNIP's calibration batches are the run's training batches: 8 rows on a decoder (the
    smoke and quick generative budgets), not the 32 of a classifier's budgets."""
    from spadapt import poc
    from spadapt.method_runs import GENERATE_BUDGETS

    seen = []
    real = poc.calibration_batches

    def calibration_batches(recipe, task, rows, batch_size):
        batches = real(recipe, task, rows, batch_size)
        seen.append((recipe.name, [len(b["input_ids"]) for b in batches]))
        return batches

    monkeypatch.setattr(poc, "calibration_batches", calibration_batches)
    result = _poc("--data", str(workspace["train"]), "--model", str(workspace["model"]),
                  "--methods", "sparse", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert GENERATE_BUDGETS["smoke"]["train"]["batch_size"] == 8
    rows = json.loads((tmp_path / "run" / "results.json").read_text())["dataset"]["train_rows"]
    # of the recipe's 4 score batches of 8 rows, as many as the training rows fill
    assert rows < 32 and seen == [("sparse", [min(8, rows - 8 * i) for i in range(4)
                                              if 8 * i < rows])]
    assert len(seen[0][1]) >= 2 and seen[0][1][0] == 8


def test_every_generative_method_trains_evaluates_and_answers_under_bf16(workspace,
                                                                          tmp_path) -> None:
    """--precision bf16: training, evaluation and the sample answers under bf16 autocast for
    the base, both PEFT methods and both spadapt methods (sparse_delta's decoding product
    has no bf16 CSR kernel on CPU)."""
    out = tmp_path / "bf16"
    result = _poc("--data", str(workspace["train"]), "--eval-data", str(workspace["eval"]),
                  "--model", str(workspace["model"]), "--precision", "bf16", "--out", str(out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert (results["precision"], results["precision_reason"]) == ("bf16", "set")
    by_name = {m["name"]: m for m in results["methods"]}
    assert list(by_name) == GENERATE_METHODS
    for method in by_name.values():
        assert "error" not in method, method.get("error")
        assert len(method["answers"]) == 5 and method["perplexity"] > 1
    assert "bf16 autocast" in (out / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--precision", "half"], "--precision must be one of ['fp32', 'bf16', 'auto']"),
    (["--metric", "bleu"], "--metric must be one of ['exact_match', 'rouge_l']"),
    (["--task", "translate"], "--task must be one of ['classify', 'generate']"),
    (["--task", "classify"], "has no text column 'text'"),
])
def test_bad_generative_options_exit_2(workspace, tmp_path, args, message) -> None:
    result = _poc("--data", str(workspace["train"]), "--model", str(workspace["model"]),
                  "--methods", "base", "--out", str(tmp_path / "run"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_chat_template_is_used_unless_turned_off(workspace) -> None:
    from transformers import AutoTokenizer

    from spadapt.tasks import CausalLMTask

    tokenizer = AutoTokenizer.from_pretrained(workspace["model"])
    templated = CausalLMTask(tokenizer).format_prompt("where is rome ?")
    plain = CausalLMTask(tokenizer, chat_template=False).format_prompt("where is rome ?")
    assert templated == "< user > where is rome ? < bot > "
    assert plain == "Question: where is rome ?\nAnswer: "


def test_a_decoder_classifies_with_a_pad_token_it_did_not_have(tmp_path) -> None:
    """`spadapt poc --model <decoder>` on labelled data: a sequence-classification head on a
    Llama whose tokenizer has no pad token (as SmolLM2's)."""
    folder = model_folder(tmp_path / "model", pad=False, extra_words=["good", "bad", "film"])
    rows = [{"text": f"{'good' if i % 2 else 'bad'} film {'is ' * (i % 5)}",
             "label": "pos" if i % 2 else "neg"} for i in range(80)]
    data = write_jsonl(tmp_path / "labelled.jsonl", rows)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "poc", "--data", str(data), "--model", str(folder), "--methods", "sparse_delta,lora",
        "--budget", "smoke", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "classification" and results["dataset"]["labels"] == ["neg", "pos"]
    assert all("error" not in m for m in results["methods"]), results["methods"]
    config = json.loads((out / "lora" / "lora" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS"


def test_untrained_method_needs_no_step_time_but_answers_must_match_samples(generate_run):
    results = json.loads((generate_run / "results.json").read_text())
    parsed = parse_results(results)
    assert not parsed.methods[0].trained and parsed.methods[0].step_seconds_median is None
    assert parsed.metric == "exact_match" and len(parsed.samples) == 5
    results["methods"][1]["answers"] = ["only one"]
    with pytest.raises(ReportError, match=r"methods\[1\]\.answers must be a list of 5"):
        parse_results(results)
    results["methods"][1]["answers"] = results["methods"][0]["answers"]
    del results["methods"][1]["rouge_l"]
    with pytest.raises(ReportError, match=r"methods\[1\]\.rouge_l is missing"):
        parse_results(results)
    results["methods"][1]["rouge_l"] = 0.5
    results["metric"] = "bleu"
    with pytest.raises(ReportError, match="metric must be one of"):
        parse_results(results)


# --- the answer metrics ----------------------------------------------------------------------

def test_normalised_exact_match_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert normalise_answer("  Paris.  ") == "paris"
    assert normalise_answer("New   York!?") == "new york"
    assert normalise_answer("ＴＯＫＹＯ") == "tokyo"  # full-width letters (NFKC)
    assert exact_match(["Paris.", "rome", "madrid is big"], ["paris", "Rome!", "madrid"]) == \
        pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 answers for 1 references"):
        exact_match(["a", "b"], ["a"])


def test_rouge_l_scores_words_and_japanese_characters() -> None:
    assert rouge_l(["the cat sat on the mat"], ["the cat sat on the mat"]) == 1.0
    # longest common subsequence "the cat on mat": 4 of 6 words each side -> F1 2/3
    assert rouge_l(["the cat sat on the mat"], ["the cat is on a mat"]) == pytest.approx(2 / 3)
    assert rouge_l([""], ["paris"]) == 0.0
    # rouge-score's own tokenizer drops non-Latin text: every Japanese answer would score 0
    assert rouge_l(["東京です"], ["東京でした"]) == pytest.approx(2 * 3 / 4 * 3 / 5 /
                                                           (3 / 4 + 3 / 5))
    assert short_answers(["paris", "a b c d e"]) and not short_answers(["a b c d e f"])
