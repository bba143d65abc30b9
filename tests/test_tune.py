"""`spadapt tune` on a tiny BERT saved as a local model folder: a seeded study is
deterministic, a killed study resumes to its total, the pruner stops trials, no trained
configuration exceeds --max-nonzero, best.yaml reproduces its trial's validation score, and
bad options exit 2 with a message."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from spadapt.cli import app
from spadapt.recipe import load_recipe
from spadapt.tune import TuneOptions
from spadapt.tune.space import TuneError, parse_max_nonzero
from spadapt.tune.study import STUDY_NAME, prepare, run_tune, train_recipe
from train_fixtures import examples, model_folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    model_dir = model_folder(root / "tiny-bert")
    data = root / "train.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for example in examples(160):
            writer.writerow([example.text, ["negative", "positive"][example.label]])
    return {"model": str(model_dir), "data": str(data), "root": root}


def _options(workspace, out: str, **overrides) -> TuneOptions:
    values = {"out": workspace["root"] / out, "data": workspace["data"],
              "model": workspace["model"], "budget": "smoke", "trials": 4,
              "max_nonzero": "2%", "progress": False, **overrides}
    return TuneOptions(**values)


def _rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _study(options: TuneOptions):
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{options.out}/study.db")


def test_a_seeded_study_is_deterministic_and_starts_from_the_shipped_recipes(workspace) -> None:
    first = run_tune(_options(workspace, "a"))
    second = run_tune(_options(workspace, "b"))
    assert first["trials"] == second["trials"] == 4
    rows_a, rows_b = _rows(workspace["root"] / "a" / "trials.csv"), \
        _rows(workspace["root"] / "b" / "trials.csv")
    for row in rows_a + rows_b:  # times differ from run to run
        row.pop("seconds"), row.pop("step_seconds")
    assert rows_a == rows_b
    assert [r["method"] for r in rows_a[:3]] == ["bottleneck", "sparse_delta", "sparse_delta"]
    assert rows_a[0]["bottleneck.placement"] == "post_ln"  # the sparse recipe's
    assert rows_a[2]["sparse_delta.schedule"] == "lottery"
    for name in ("best.yaml", "search.png", "study.db"):
        assert (workspace["root"] / "a" / name).stat().st_size > 0


def test_best_yaml_reproduces_its_trial_validation_score(workspace) -> None:
    options = _options(workspace, "a", resume=True)  # the study of the test above
    best = max((t for t in _study(options).get_trials()
                if t.state == optuna.trial.TrialState.COMPLETE),
               key=lambda t: (t.value, -t.user_attrs["nonzero_params"], -t.number))
    recipe = load_recipe(options.out / "best.yaml")
    assert recipe.adapter == best.user_attrs["recipe"]["adapter"]
    measured = train_recipe(recipe, prepare(options))
    assert measured["value"] == pytest.approx(best.value, abs=1e-9)
    assert measured["nonzero_params"] == best.user_attrs["nonzero_params"]


def test_a_killed_study_resumes_until_it_holds_the_total(workspace) -> None:
    options = _options(workspace, "resumed", trials=2)
    run_tune(options)
    study = _study(options)
    study.ask()  # a trial left "running", as a killed process leaves it
    with pytest.raises(TuneError, match="--resume"):
        run_tune(options)
    run_tune(_options(workspace, "resumed", trials=4, resume=True))
    states = [t.state for t in _study(options).get_trials()]
    assert states[2] == optuna.trial.TrialState.FAIL  # the killed one
    counted = [s for s in states if s in (optuna.trial.TrialState.COMPLETE,
                                          optuna.trial.TrialState.PRUNED)]
    assert len(counted) == 4 and len(states) == 5
    assert len(_rows(options.out / "trials.csv")) == 5


def test_trials_run_at_the_precision_the_study_records(workspace) -> None:
    plain = run_tune(_options(workspace, "fp32", trials=1))
    assert (plain["precision"], plain["precision_reason"]) == ("fp32", None)  # smoke sets none
    assert "precision" not in load_recipe(workspace["root"] / "fp32" / "best.yaml").train
    options = _options(workspace, "bf16", trials=1, precision="bf16")
    found = run_tune(options)
    assert (found["precision"], found["precision_reason"]) == ("bf16", "set")
    assert found["best"]["recipe"]["train"]["precision"] == "bf16"  # what the trial trained
    recipe = load_recipe(options.out / "best.yaml")
    assert recipe.train_config().precision == "bf16"  # best.yaml trains as its trial did
    with pytest.raises(TuneError, match="ran its trials at bf16; resume it with --precision bf16"):
        run_tune(_options(workspace, "bf16", trials=2, precision="fp32", resume=True))
    assert len(_study(options).get_trials()) == 1  # nothing ran at the other precision


def test_among_equally_accurate_trials_the_smaller_adapter_is_best(tmp_path) -> None:
    from spadapt.tune.study import write_outputs

    study = optuna.create_study(direction="maximize")
    for number, (value, nonzero) in enumerate([(0.97, 109_256), (0.97, 38_392), (0.96, 100)]):
        recipe = {"name": "tuned", "description": f"trial {number}", "kind": "spadapt",
                  "adapter": {"method": "sparse_delta", "density": 0.01}, "train": {}}
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, value=value,
            user_attrs={"recipe": recipe, "nonzero_params": nonzero, "settings": "s",
                        "seconds": 1.0, "step_seconds": 0.1}))
    write_outputs(study, tmp_path)
    assert load_recipe(tmp_path / "best.yaml").description == "trial 1"


def test_the_pruner_stops_a_trial_at_its_first_evaluation(workspace) -> None:
    options = _options(workspace, "pruned", trials=2)
    run_tune(options, pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # accuracy < 2
    trials = _study(options).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.PRUNED] * 2
    for trial in trials:
        assert list(trial.intermediate_values) == [1]  # of 4 evaluations: the first
    assert not (options.out / "best.yaml").exists()
    rows = _rows(options.out / "trials.csv")  # what each stopped trial trained is on record
    assert [row["state"] for row in rows] == ["PRUNED"] * 2
    assert all(int(row["nonzero_params"]) > 0 for row in rows)


def test_the_default_pruner_judges_a_trial_from_its_third_evaluation_on() -> None:
    from spadapt.tune.study import PRUNE_FROM_EVALUATION, default_pruner

    assert PRUNE_FROM_EVALUATION == 3
    study = optuna.create_study(direction="maximize", pruner=default_pruner())
    for _ in range(3):  # the shipped recipes' trials: 0.8 at every evaluation
        trial = study.ask()
        for evaluation in range(1, 5):
            trial.report(0.8, evaluation)
        study.tell(trial, 0.8)
    poor = study.ask()
    for evaluation in (1, 2):  # far below the median, but still in warm-up or a reset
        poor.report(0.5, evaluation)
        assert not poor.should_prune()
    poor.report(0.5, 3)
    assert poor.should_prune()
    good = study.ask()
    for evaluation in range(1, 4):
        good.report(0.5 if evaluation < 3 else 0.81, evaluation)
    assert not good.should_prune()  # caught up by the third


def _draws(sampler, count: int = 8) -> list[float]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    draws = []
    for _ in range(count):
        trial = study.ask()
        draws.append(trial.suggest_float("x", 0.0, 1.0))
        study.tell(trial, -(draws[-1] - 0.3) ** 2)
    return draws


def test_the_sampler_guides_after_the_shipped_recipes_and_three_random_points() -> None:
    from spadapt.tune.space import SHIPPED
    from spadapt.tune.study import RANDOM_POINTS, default_sampler

    assert len(SHIPPED) + RANDOM_POINTS == 6
    random = _draws(optuna.samplers.RandomSampler(seed=0))
    ours = _draws(default_sampler(seed=0))
    assert ours[:6] == random[:6]  # the shipped recipes' places, then 3 random points
    assert ours[6] != random[6]  # TPE from the 7th trial on
    assert _draws(default_sampler(seed=0)) == ours  # seeded


def test_no_trained_configuration_exceeds_max_nonzero(workspace) -> None:
    options = _options(workspace, "tight", trials=6, max_nonzero="400", seed=3)
    run_tune(options)
    trials = _study(options).get_trials()
    trained = [t for t in trials if t.intermediate_values]
    assert trained
    for trial in trained:
        assert trial.user_attrs["nonzero_params"] <= 400, trial.params
    for row in _rows(options.out / "trials.csv"):
        if row["value"]:
            assert int(row["nonzero_params"]) <= 400


def test_a_pareto_study_writes_its_front_and_never_prunes_a_trained_trial(workspace) -> None:
    options = _options(workspace, "pareto", trials=5, objective="pareto")
    result = run_tune(options)
    assert result["objective"] == "pareto"
    study = _study(options)
    assert len(study.directions) == 3
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(not t.intermediate_values for t in study.get_trials())

    def dominates(a, b) -> bool:
        better = (a.values[0] >= b.values[0], a.values[1] <= b.values[1],
                  a.values[2] <= b.values[2])
        return all(better) and a.values != b.values

    expected = sorted(t.number for t in complete
                      if not any(dominates(other, t) for other in complete))
    rows = _rows(options.out / "pareto.csv")
    assert sorted(int(r["number"]) for r in rows) == expected == result["front"]
    best = max(complete, key=lambda t: (t.values[0], -t.values[1], -t.number))
    assert load_recipe(options.out / "best.yaml").adapter == best.user_attrs["recipe"]["adapter"]
    with pytest.raises(TuneError, match="another --objective"):
        run_tune(_options(workspace, "pareto", trials=6, resume=True))


def test_max_nonzero_is_a_share_or_a_count() -> None:
    assert parse_max_nonzero("0.5%", 22_713_986) == 113_569
    assert parse_max_nonzero("100_000", 10) == 100_000
    for bad in ("abc", "0", "-1%"):
        with pytest.raises(TuneError, match="--max-nonzero"):
            parse_max_nonzero(bad, 1000)


@pytest.mark.parametrize("arguments, message", [
    (["--max-nonzero", "20"], "below what any method needs"),
    (["--trials", "0"], "--trials must be at least 1"),
    (["--max-nonzero", "lots"], "--max-nonzero must be"),
    (["--budget", "huge"], "--budget must be one of"),
    (["--objective", "fastest"], "--objective must be one of"),
    (["--precision", "fp16"], "--precision must be one of"),
])
def test_bad_options_exit_2_with_a_message(workspace, arguments, message) -> None:
    out = workspace["root"] / f"bad{len(arguments[1])}{arguments[0]}"
    result = CliRunner().invoke(app, ["tune", "--data", workspace["data"], "--model",
                                      workspace["model"], "--budget", "smoke", "--out", str(out),
                                      "--no-progress", *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_the_command_prints_the_best_trial_and_its_recipe(workspace) -> None:
    out = workspace["root"] / "cli"
    result = CliRunner().invoke(app, ["tune", "--data", workspace["data"], "--model",
                                      workspace["model"], "--budget", "smoke", "--trials", "1",
                                      "--max-nonzero", "2%", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "best: trial 0" in result.output and "best.yaml" in result.output
    assert load_recipe(out / "best.yaml").kind == "spadapt"


def test_poc_tune_adds_the_tuned_method_and_the_search_to_the_report(workspace) -> None:
    import json

    out = workspace["root"] / "poc"
    result = CliRunner().invoke(app, ["poc", "--data", workspace["data"], "--model",
                                      workspace["model"], "--budget", "smoke", "--methods",
                                      "sparse", "--tune", "--tune-trials", "2",
                                      "--tune-max-nonzero", "2%", "--precision", "bf16",
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["search"]["precision"] == results["precision"] == "bf16"  # one precision
    assert [m["name"] for m in results["methods"]] == ["sparse", "tuned"]
    search = results["search"]
    assert search["trials"] == 2 and search["completed"] + search["pruned"] == 2
    best = search["best"]
    tuned = results["methods"][1]
    assert tuned["description"] == best["description"] == load_recipe(
        out / "tune" / "best.yaml").description
    assert tuned["nonzero_params"] == best["nonzero_params"] <= 0.02 * \
        results["base_model"]["parameters"]
    markdown = (out / "report.md").read_text()
    assert "## The configuration search" in markdown and "plots/search.png" in markdown
    assert f"Best: trial {best['number']}" in markdown
    assert (out / "plots" / "search.png").stat().st_size > 0
    for method in results["methods"]:  # where each kept its values, all of them counted
        assert sum(map(sum, method["spread"]["counts"])) == method["nonzero_params"]
    assert "## Where tuned keeps its values" in markdown
    assert (out / "plots" / "kept_values_by_layer.png").stat().st_size > 0
    assert 'id="plot-search"' in (out / "report.html").read_text()


def test_a_bad_search_record_in_results_json_is_named() -> None:
    from spadapt.report import ReportError, parse_results

    results = {"dataset": {"name": "d", "train_rows": 1, "eval_rows": 1, "labels": ["a"]},
               "base_model": {"name": "m"},
               "methods": [{"name": "x", "error": "boom"}],
               "search": {"trials": 2, "completed": 1, "pruned": 1, "failed": 0,
                          "seconds": 3.0, "validation_rows": 10, "points": [[5, "high"]]}}
    with pytest.raises(ReportError, match=r"search\.points\[0\]"):
        parse_results(results)
