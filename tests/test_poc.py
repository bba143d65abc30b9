"""The PoC pipeline and the train / eval / predict / report commands, end to end on a tiny
BERT saved as a local model folder and small CSV files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from spadapt.cli import app
from spadapt.report.i18n import strings
from train_fixtures import examples, model_folder, task

RESULT_FIELDS = {"name", "accuracy", "macro_f1", "base_params", "trainable_params",
                 "nonzero_params", "adapter_bytes", "train_seconds", "step_seconds_median",
                 "peak_memory_bytes", "adapter_dir"}
METHODS = ["full", "lora", "adapter", "sparse", "large_sparse", "sparse_delta"]


def _report_methods(out: Path) -> tuple[list[str], list[str]]:
    """The method names of the results tables of report.md and report.html (English), in row
    order, without the recommendation mark and the description."""
    recommended = f" ({strings('en')['recommended']})"
    rows = [line for line in (out / "report.md").read_text().splitlines()
            if line.startswith("| ")][1:]  # the report's one table, after its header
    md = [re.split(r"(?<!\\)\|", line)[1].strip().split(" — ")[0] for line in rows]
    html = re.findall(r'<td class="method">(.*?)(?:<span class="desc">|</td>)',
                      (out / "report.html").read_text())

    def name(cell: str) -> str:
        if not cell.startswith("★ "):
            return cell
        return cell.removeprefix("★ ").removesuffix(recommended).strip("*")

    return [name(c) for c in md], [name(c) for c in html]


def _write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for example in rows:
            writer.writerow([example.text, ["negative", "positive"][example.label]])
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("poc")
    model_dir = model_folder(root / "tiny-bert")
    train_csv = _write_csv(root / "train.csv", examples(160))
    eval_csv = _write_csv(root / "eval.csv", examples(40, seed=1))
    return {"root": root, "model": str(model_dir), "train": str(train_csv),
            "eval": str(eval_csv)}


@pytest.fixture(scope="module")
def poc_run(workspace):
    out = workspace["root"] / "run"
    result = CliRunner().invoke(app, [
        "poc", "--data", workspace["train"], "--eval-data", workspace["eval"],
        "--text-column", "review", "--label-column", "sentiment", "--model",
        workspace["model"], "--methods", ",".join(METHODS), "--budget", "quick",
        "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_poc_writes_results_adapters_and_report(poc_run) -> None:
    out, output = poc_run
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["labels"] == ["negative", "positive"]
    assert results["dataset"]["train_rows"] == 160 and results["dataset"]["eval_rows"] == 40
    assert [m["name"] for m in results["methods"]] == METHODS
    by_name = {m["name"]: m for m in results["methods"]}
    for method in results["methods"]:
        assert RESULT_FIELDS <= set(method), method.get("error")
        assert (out / method["adapter_dir"]).is_dir()
        assert method["nonzero_params"] <= method["trainable_params"]
        assert method["peak_memory_bytes"] > 0 and method["step_seconds_median"] > 0
        assert method["history"] and 0 <= method["accuracy"] <= 1
    assert by_name["full"]["trainable_params"] == by_name["full"]["base_params"]
    assert by_name["sparse"]["nonzero_params"] < by_name["adapter"]["nonzero_params"]
    assert by_name["sparse"]["adapter_bytes"] < by_name["adapter"]["adapter_bytes"] \
        < by_name["full"]["adapter_bytes"]
    # 5x wider, same kept weights (checked exactly in test_api); biases grow with the width
    assert by_name["large_sparse"]["trainable_params"] > 4 * by_name["sparse"]["trainable_params"]
    # each method has its own row in both reports ("sparse" alone would also match the
    # rows of large_sparse and sparse_delta)
    assert _report_methods(out) == (METHODS, METHODS)
    assert "report.html" in output


def test_eval_of_a_saved_adapter_reproduces_the_poc_accuracy(poc_run, workspace) -> None:
    out, _ = poc_run
    results = json.loads((out / "results.json").read_text())
    sparse = next(m for m in results["methods"] if m["name"] == "sparse")
    # quick's precision is "auto": bf16 on a CPU that computes it natively, else fp32
    assert results["precision"] in ("fp32", "bf16")
    assert results["budget_rule"]["precision"] == results["precision"]
    result = CliRunner().invoke(app, [
        "eval", "--adapter", str(out / sparse["adapter_dir"]), "--data", workspace["eval"],
        "--text-column", "review", "--label-column", "sentiment",
        "--precision", results["precision"]])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["rows"] == 40
    assert metrics["accuracy"] == pytest.approx(sparse["accuracy"])
    assert metrics["macro_f1"] == pytest.approx(sparse["macro_f1"])


def test_predict_prints_labels_and_probabilities(poc_run) -> None:
    out, _ = poc_run
    result = CliRunner().invoke(app, ["predict", "--adapter", str(out / "adapter" / "adapter"),
                                      "--text", "great superb film", "--text", "bad plot"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in rows] == ["great superb film", "bad plot"]
    for row in rows:
        assert row["label"] in ("negative", "positive")
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_resume_keeps_finished_methods(poc_run, workspace) -> None:
    out, _ = poc_run
    before = json.loads((out / "results.json").read_text())
    result = CliRunner().invoke(app, [
        "poc", "--data", workspace["train"], "--eval-data", workspace["eval"],
        "--text-column", "review", "--label-column", "sentiment", "--model",
        workspace["model"], "--methods", "adapter,sparse", "--resume", "--no-progress",
        "--lang", "ja", "--out", str(out)])
    assert result.exit_code == 0, result.output
    after = json.loads((out / "results.json").read_text())
    assert after["methods"] == [m for m in before["methods"] if m["name"] in ("adapter", "sparse")]


def test_train_command_with_overrides(workspace, tmp_path) -> None:
    result = CliRunner().invoke(app, [
        "train", "--config", "sparse", "--set", "train.epochs=1", "--set", "adapter.density=0.1",
        "--set", "train.max_length=16", "--data", workspace["train"], "--text-column", "review",
        "--label-column", "sentiment", "--model", workspace["model"], "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "sparse" / "adapter" / "adapter_config.json").read_text())
    assert config["config"]["density"] == 0.1
    assert config["base_model"] == workspace["model"]


@pytest.mark.parametrize("args, message", [
    (["--data", "nope.csv"], "nope.csv"),
    (["--methods", "adapter,teleport"], "teleport"),
    (["--budget", "huge"], "budget"),
    (["--precision", "fp8"], "--precision must be one of"),
    (["--label-column", "stars"], "stars"),
])
def test_bad_poc_input_exits_2_with_a_clear_message(workspace, tmp_path, args, message) -> None:
    base = ["poc", "--data", workspace["train"], "--text-column", "review", "--label-column",
            "sentiment", "--model", workspace["model"], "--no-progress", "--out", str(tmp_path)]
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[base.index(flag) + 1] = value
        else:
            base += [flag, value]
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_train_help_lists_recipe_fields() -> None:
    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "train.learning_rate" in result.output and "adapter.density" in result.output


@pytest.mark.real
def test_poc_on_prompt_response_data_with_a_tiny_llama(tmp_path) -> None:
    """Causal-LM instruction tuning through the same pipeline (SmolLM2's tokenizer, tiny model)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from spadapt.assets import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:smollm2"))
    model_dir = tmp_path / "tiny-llama"
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    rows = [{"prompt": f"What is {a} plus {b}?", "response": str(a + b)}
            for a in range(8) for b in range(5)]
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "poc", "--data", str(data), "--model", str(model_dir), "--methods",
        "lora,sparse_delta,adapter", "--budget", "smoke", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "generate" and results["dataset"]["labels"] == []
    for method in results["methods"]:
        assert "error" not in method, method.get("error")
        assert method["perplexity"] > 1 and 0 <= method["exact_match"] <= 1
        assert "confusion_matrix" not in method and 0 <= method["rouge_l"] <= 1
    assert "sparse_delta" in (out / "report.html").read_text()


def test_a_seeded_base_does_not_depend_on_what_ran_before(workspace) -> None:
    import torch

    from spadapt.poc import load_seeded_base
    from spadapt.tasks import ClassificationTask

    # three labels: the saved two-label head is replaced by a new one
    classification = ClassificationTask(task().tokenizer, ["a", "b", "c"], max_length=16)
    first = load_seeded_base(classification, workspace["model"], seed=3)
    torch.rand(1000)  # another method's run consumed random numbers meanwhile
    second = load_seeded_base(classification, workspace["model"], seed=3)
    other = load_seeded_base(classification, workspace["model"], seed=4)
    head = [name for name, _ in first.named_parameters() if name.startswith("classifier")]
    assert head
    state = [dict(m.named_parameters()) for m in (first, second, other)]
    assert all(torch.equal(state[0][n], state[1][n]) for n in head)
    assert not all(torch.equal(state[0][n], state[2][n]) for n in head)


def test_the_report_states_the_budget_every_method_ran_under(poc_run, tmp_path) -> None:
    from spadapt.poc import BUDGETS
    from spadapt.report import write_report

    out, _ = poc_run
    rule = BUDGETS["quick"]["train"]
    results = json.loads((out / "results.json").read_text())
    # 160 rows: 5 steps a pass, and quick passes over a small set at most `epochs` times
    steps = min(rule["max_steps"], 5 * rule["epochs"])
    assert results["budget_rule"]["steps"] == steps
    assert all(method["steps"] == steps for method in results["methods"])
    (tmp_path / "results.json").write_text(json.dumps(results))  # other tests rewrite `out`
    write_report(tmp_path, lang="en")
    want = (f"quick: every method trains {steps} optimizer steps of "
            f"{rule['batch_size']} rows on the same 160 training rows")
    assert want in (tmp_path / "report.md").read_text()
    assert want in (tmp_path / "report.html").read_text()
    bf16 = "training and evaluation forwards in bf16 autocast"
    assert (bf16 in (tmp_path / "report.md").read_text()) is (results["precision"] == "bf16")
    results["budget"], results["budget_rule"] = "standard", {
        "max_steps": None, "epochs": 3, "batch_size": 32, "early_stopping_patience": 1}
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(tmp_path, lang="en")
    assert ("standard: every method trains up to 3 passes over the same 160 training rows, "
            "32 rows a step, with early stopping (patience 1)"
            ) in (tmp_path / "report.md").read_text()
    assert bf16 not in (tmp_path / "report.md").read_text()
    results["budget_rule"]["precision"] = "bf16"
    (tmp_path / "results.json").write_text(json.dumps(results))
    for lang, text in (("en", bf16), ("ja", "bf16 自動混合精度")):
        write_report(tmp_path, lang=lang)
        assert text in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("native", [True, False])
def test_the_quick_budget_trains_and_evaluates_in_bf16_where_it_is_native(
        workspace, tmp_path, monkeypatch, native) -> None:
    """quick's "auto": bf16 autocast where the hardware computes bf16 natively, else fp32;
    `--precision` overrides it, and the choice is recorded."""
    from spadapt.poc import BUDGETS
    from spadapt.train import levers

    monkeypatch.setattr(levers, "native_bf16", lambda device: native)
    monkeypatch.setitem(BUDGETS, "smoke", {**BUDGETS["smoke"], "precision": "auto"})
    dtypes = set()
    real_evaluate = task().__class__.evaluate

    def evaluate(self, model, examples, batch_size=64):
        dtypes.add(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                   else torch.float32)
        return real_evaluate(self, model, examples, batch_size)

    monkeypatch.setattr(task().__class__, "evaluate", evaluate)
    base = ["poc", "--data", workspace["train"], "--eval-data", workspace["eval"],
            "--text-column", "review", "--label-column", "sentiment", "--model",
            workspace["model"], "--methods", "sparse_delta", "--budget", "smoke",
            "--no-progress"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "auto" / "results.json").read_text())
    want = "bf16" if native else "fp32"
    assert (results["precision"], results["budget_rule"]["precision"]) == (want, want)
    assert results["precision_reason"] == ("native_bf16" if native else "no_native_bf16")
    assert dtypes == {torch.bfloat16 if native else torch.float32}
    dtypes.clear()
    result = CliRunner().invoke(app, [*base, "--precision", "fp32", "--out",
                                      str(tmp_path / "fp32")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "fp32" / "results.json").read_text())
    assert (results["precision"], results["precision_reason"]) == ("fp32", "set")
    assert dtypes == {torch.float32}
