"""The `spadapt` command: inspect on good and corrupted adapters, exit codes, and the demo."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

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


def test_help_exits_0():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "inspect" in result.output


def test_demo_option_defaults_match_run_demo():
    from spadapt.demo import run_demo

    command = typer.main.get_command(app).commands["demo"]
    options = {param.name: param.default for param in command.params}
    expected = {name: param.default for name, param in
                inspect.signature(run_demo).parameters.items() if name != "out_dir"}
    assert {name: options[name] for name in expected} == expected
    assert options["out"] == Path("runs/demo")


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


def test_demo_bad_density_exits_2_before_loading(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--density", "0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: density")
    assert not (tmp_path / "summary.json").exists()


def test_internal_error_exits_1(monkeypatch, tmp_path):
    import spadapt.demo

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(spadapt.demo, "run_demo", broken)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.real
def test_demo_on_minilm_writes_summary_and_adapter(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--train-rows", "128",
                                 "--eval-rows", "128", "--steps", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'summary.json'}" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["train_rows"] == 128 and summary["dataset"]["eval_rows"] == 128
    assert summary["base_model"]["name"] == "builtin:minilm"
    assert summary["config"]["density"] == 0.2 and summary["config"]["scorer"] == "snip"
    for key in ("accuracy_majority", "accuracy_before", "accuracy_after"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["accuracy_reloaded"] == summary["accuracy_after"]
    assert summary["train_seconds"] > 0 and summary["step_seconds_median"] > 0
    report = summary["parameter_report"]
    assert report["base"] == summary["base_model"]["parameters"] > 20_000_000
    assert 0 < report["nonzero"] < report["trainable"] < report["base"]
    adapter = out / "adapter"
    assert adapter.is_dir() and summary["adapter_dir"] == str(adapter)
    assert summary["adapter_files"] == {
        p.name: p.stat().st_size for p in adapter.iterdir() if p.is_file()}
    assert summary["adapter_files"]["adapter.safetensors"] == report["adapter_bytes"]
