"""`spadapt tune` on prompt/response data with a tiny Llama: trials are scored on the validation
response loss (lower is better), four times a trial even when the budget's steps end inside
the first epoch, the best trial is the lowest loss, best.yaml reproduces it, and a study of
one score is not resumed on data of the other."""

from __future__ import annotations

import csv
import dataclasses

import optuna
import pytest
from typer.testing import CliRunner

from generate_fixtures import model_folder, qa_rows, write_jsonl
from spadapt.cli import app
from spadapt.data import load_dataset
from spadapt.recipe import load_recipe
from spadapt.train.config import TrainConfig
from spadapt.tune import TuneOptions
from spadapt.tune.space import TuneError
from spadapt.tune.study import (
    EVALUATIONS_PER_TRIAL,
    STUDY_NAME,
    evaluations_per_epoch,
    prepare,
    run_tune,
    train_recipe,
)
from train_fixtures import examples
from train_fixtures import model_folder as bert_folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tune_generate")
    rows = qa_rows() * 2  # 48 rows: a fifth of the training rows scores the trials
    return {"root": root, "model": str(model_folder(root / "llama")),
            "data": str(write_jsonl(root / "qa.jsonl", rows))}


def _options(workspace, out: str, **overrides) -> TuneOptions:
    values = {"out": workspace["root"] / out, "data": workspace["data"],
              "model": workspace["model"], "budget": "smoke", "trials": 4,
              "max_nonzero": "5%", "progress": False, **overrides}
    return TuneOptions(**values)


def _study(options: TuneOptions):
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{options.out}/study.db")


def test_a_generative_study_minimises_the_validation_loss(workspace) -> None:
    options = _options(workspace, "loss")
    data = prepare(options)
    assert data.score == "loss"
    assert not data.task.answers  # trials are scored on loss: no answers generated
    training = load_dataset(workspace["data"], seed=0).train  # the file less its eval rows
    assert len(data.validation_rows) == len(training) // 5  # under the default of 100
    assert not {id(r) for r in data.validation_rows} & {id(r) for r in data.train_rows}
    found = run_tune(options)
    assert (found["score"], found["trials"]) == ("loss", 4)
    study = _study(options)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(t.value > 0 for t in complete)  # losses, not accuracies
    lowest = min(complete, key=lambda t: (t.value, t.user_attrs["nonzero_params"], t.number))
    assert found["best"]["number"] == lowest.number
    for trial in study.get_trials():
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
    header = (options.out / "best.yaml").read_text().splitlines()[0]
    assert f"trial {lowest.number} of 4, validation loss" in header
    with open(options.out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[lowest.number]["value"]) == pytest.approx(lowest.value)
    recipe = load_recipe(options.out / "best.yaml")
    measured = train_recipe(recipe, prepare(dataclasses.replace(options, resume=True)))
    assert measured["value"] == pytest.approx(lowest.value, abs=1e-9)


def test_evaluations_spread_over_steps_that_end_inside_the_first_epoch() -> None:
    config = TrainConfig(epochs=3, max_steps=24, batch_size=8)
    per_epoch = evaluations_per_epoch(config, 4096)  # 512 steps an epoch, 24 trained
    points = sorted({round(512 * (i + 1) / per_epoch) for i in range(per_epoch)})
    assert [p for p in points if p <= 24] == [6, 12, 18, 24]
    whole = TrainConfig(epochs=1, max_steps=128, batch_size=32)
    assert evaluations_per_epoch(whole, 4096) == EVALUATIONS_PER_TRIAL  # classification quick


def test_a_study_is_not_resumed_on_data_of_the_other_score(workspace, tmp_path) -> None:
    options = _options(workspace, "other", trials=1)
    run_tune(options)
    labelled = tmp_path / "labelled.csv"
    with open(labelled, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for example in examples(40):
            writer.writerow([example.text, example.label])
    with pytest.raises(TuneError, match="scored by validation loss"):
        run_tune(dataclasses.replace(options, data=str(labelled), trials=2, resume=True,
                                     model=str(bert_folder(tmp_path / "bert"))))
    assert len(_study(options).get_trials()) == 1


def _command(workspace, out, *arguments: str):
    return CliRunner().invoke(app, ["tune", "--data", workspace["data"], "--model",
                                    workspace["model"], "--budget", "smoke", "--out", str(out),
                                    "--no-progress", *arguments])


def test_the_command_names_the_loss_of_its_best_trial(workspace) -> None:
    result = _command(workspace, workspace["root"] / "cli", "--trials", "1",
                      "--max-nonzero", "5%")
    assert result.exit_code == 0, result.output
    assert "best: trial 0, validation loss" in result.output
    result = _command(workspace, workspace["root"] / "zero", "--validation-rows", "0")
    assert result.exit_code == 2 and "--validation-rows must be at least 1" in result.output


def test_poc_tune_on_prompt_response_data_adds_the_tuned_method(workspace) -> None:
    import json

    from spadapt.report import parse_results, render_markdown

    out = workspace["root"] / "poc"
    result = CliRunner().invoke(app, ["poc", "--data", workspace["data"], "--model",
                                      workspace["model"], "--budget", "smoke", "--methods",
                                      "sparse_delta", "--tune", "--tune-trials", "2",
                                      "--tune-max-nonzero", "5%", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "generate"
    assert [m["name"] for m in results["methods"]] == ["sparse_delta", "tuned"]
    search, tuned = results["search"], results["methods"][1]
    assert search["score"] == "loss" and search["best"]["value"] > 0
    assert tuned["description"] == search["best"]["description"]
    assert tuned["task"] == "generate" and len(tuned["answers"]) > 0  # evaluated like the rest
    markdown = (out / "report.md").read_text()
    assert f"Best: trial {search['best']['number']}" in markdown
    assert f"validation loss {search['best']['value']:.3f}" in markdown
    assert "検証損失" in render_markdown(parse_results(results), "ja")
    assert (out / "plots" / "search.png").stat().st_size > 0


def test_a_search_of_an_unknown_score_is_named() -> None:
    from spadapt.report import ReportError, parse_results

    results = {"dataset": {"name": "d", "train_rows": 1, "eval_rows": 1, "labels": ["a"]},
               "base_model": {"name": "m"}, "methods": [{"name": "x", "error": "boom"}],
               "search": {"trials": 1, "completed": 1, "pruned": 0, "failed": 0,
                          "seconds": 3.0, "validation_rows": 10, "points": [[5, 0.5]],
                          "score": "bleu"}}
    with pytest.raises(ReportError, match=r"search\.score"):
        parse_results(results)
