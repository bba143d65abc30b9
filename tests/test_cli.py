"""The `spadapt` command: inspect on good and corrupted adapters, exit codes, and the PoC on the
real MiniLM."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import spadapt
from conftest import make_batch, tiny_bert
from spadapt.cli import app

runner = CliRunner()


@pytest.fixture
def adapter_dir(tmp_path):
    config = spadapt.AdapterConfig(bottleneck=8, density=0.25, scorer="snip")
    model = spadapt.attach(tiny_bert(), config, calibration=[make_batch("bert")])
    return model.save_adapter(tmp_path / "adapter"), model.parameter_report()


COMMANDS = {"poc", "train", "eval", "predict", "report", "inspect", "recipes", "registry",
            "serve", "tune"}


def _listed_commands(help_text: str) -> set[str]:
    """The names in the help's Commands panel: the word at the start of a row of the box
    (`│ poc   Compare ...`), not the indented lines a long description wraps onto."""
    panel = help_text.split("Commands", 1)[1]
    return {line[2:].split(" ", 1)[0] for line in panel.splitlines()
            if line.startswith("│ ") and line[2:3] not in (" ", "")}


def test_help_exits_0_and_lists_every_command_by_name():
    result = runner.invoke(app, ["--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert set(typer.main.get_command(app).commands) == COMMANDS
    assert _listed_commands(result.output) == COMMANDS
    assert _listed_commands("Commands\n│ poc  Compare: a report\n│      then report\n") == {"poc"}


def test_inspect_prints_config_nnz_files_and_base(adapter_dir):
    path, report = adapter_dir
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["nnz"] == report["nonzero"]
    assert f"nnz: {report['nonzero']} " in result.stdout
    assert "method: \"bottleneck\"" in result.stdout
    assert f"adapter.safetensors: {report['adapter_bytes']} bytes" in result.stdout
    assert f"base model: bert, {manifest['base_model']['parameters']} parameters" in result.stdout


def test_inspect_corrupted_adapter_exits_2_naming_the_file(adapter_dir):
    path, _ = adapter_dir
    weights = path / "adapter.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "adapter.safetensors" in result.stderr
    assert "Traceback" not in result.output


def test_inspect_missing_dir_exits_2(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "error: " in result.stderr and "nothing" in result.stderr


def test_bad_recipe_override_exits_2_before_loading(tmp_path):
    result = runner.invoke(app, ["train", "--config", "sparse", "--set", "adapter.density=0",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: density")
    assert not any(tmp_path.iterdir())


def test_internal_error_exits_1(monkeypatch, tmp_path):
    import spadapt.poc

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(spadapt.poc, "run_poc", broken)
    result = runner.invoke(app, ["poc", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.real
def test_poc_on_minilm_and_rotten_tomatoes(tmp_path):
    """The main job on the real model and data, at the tiny "smoke" budget."""
    out = tmp_path / "poc"
    result = runner.invoke(app, ["poc", "--budget", "smoke", "--methods", "lora,sparse",
                                 "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "builtin:rotten_tomatoes"
    assert results["dataset"]["labels"] == ["rotten", "fresh"]
    assert results["base_model"]["parameters"] > 20_000_000
    sparse = results["methods"][1]
    assert sparse["name"] == "sparse" and 0 < sparse["nonzero_params"] < 100_000
    adapter = out / sparse["adapter_dir"]
    assert (adapter / "adapter.safetensors").stat().st_size < 400_000
    predicted = runner.invoke(app, ["predict", "--adapter", str(adapter), "--text",
                                    "A warm, funny and beautifully acted film."])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["label"] in ("rotten", "fresh")


def test_recipe_numbers_in_exponent_form_are_floats(tmp_path):
    from spadapt.recipe import load_recipe

    recipe = load_recipe("sparse", ["train.learning_rate=1e-3", "adapter.density=2E-1",
                                    "train.epochs=2"])
    assert recipe.train_config().learning_rate == 0.001
    assert recipe.adapter_config().density == 0.2
    assert recipe.train_config().epochs == 2
    path = tmp_path / "mine.yaml"
    path.write_text("kind: spadapt\nadapter: {method: bottleneck}\ntrain:\n  learning_rate: 3e-4\n")
    assert load_recipe(path).train_config().learning_rate == 0.0003


def test_train_field_of_the_wrong_type_exits_2_naming_it(tmp_path):
    result = runner.invoke(app, ["train", "--config", "sparse", "--set",
                                 "train.warmup_ratio=abc", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "warmup_ratio must be a number, got 'abc'" in result.stderr
