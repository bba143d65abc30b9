"""The benchmark suite's machinery on tiny models: competitors, timing statistics, the bound,
and BENCHMARKS.md regeneration. (The suite itself runs on the real MiniLM: `make bench`.)"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re

import pytest
import torch
from benchmarks import common, markdown
from benchmarks.common import Series, interleaved, ratio_summary
from benchmarks.competitors import COMPETITORS, make_trainee, shira_rank

from conftest import make_batch, tiny_bert
from spadapt.codecs import information_bound_bits
from spadapt.storage import information_bound_bytes


def test_interleaved_gives_every_call_its_rounds_and_medians() -> None:
    calls = {"a": 0, "b": 0}

    def make(name):
        def call():
            calls[name] += 1
        return call

    series = interleaved({"a": make("a"), "b": make("b")}, rounds=4, warmup=2, repeats=3)
    assert calls == {"a": 4 * 5, "b": 4 * 5}
    assert all(len(s.rounds) == 4 and all(t >= 0 for t in s.rounds) for s in series.values())


def test_ratio_summary_pairs_rounds() -> None:
    ratios = ratio_summary(Series([2.0, 4.0, 9.0]), Series([1.0, 4.0, 3.0]))
    assert ratios == {"median": 2.0, "min": 1.0, "max": 3.0}
    with pytest.raises(ValueError):
        ratio_summary(Series([1.0]), Series([1.0, 2.0]))


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


@pytest.mark.parametrize("name", list(COMPETITORS))
def test_every_competitor_trains_only_what_it_should(name, bert) -> None:
    batch = make_batch("bert", rows=8, length=16)
    trainee = make_trainee(name, bert, [batch])
    encoder_before = copy.deepcopy(bert.bert.encoder.state_dict())
    before = {n: p.detach().clone() for n, p in trainee.model.named_parameters()}
    losses = [trainee.step(batch) for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    changed = {n for n, p in trainee.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, f"{name}: nothing trained"
    # the builder works on a copy: the shared base is never touched
    after = bert.bert.encoder.state_dict()
    assert all(torch.equal(after[k], v) for k, v in encoder_before.items())
    if name == "floor":
        assert changed <= {n for n in before if n.startswith("classifier.")}
    if name == "full":
        assert any(".encoder." in n for n in changed)


def test_floor_carries_gradients_to_the_input_embeddings(bert) -> None:
    batch = make_batch("bert", rows=4, length=8)
    trainee = make_trainee("floor", bert, [batch])
    seen = []
    embeddings = trainee.model.get_input_embeddings()

    def watch(module, args, output) -> None:
        output.register_hook(lambda grad: seen.append(grad.shape))

    embeddings.register_forward_hook(watch)
    trainee.step(batch)
    assert seen == [torch.Size([4, 8, 32])]


def test_shira_rank_matches_the_density() -> None:
    model = tiny_bert()
    # tiny BERT: per layer q, k, v, o (32×32) and 32→48, 48→32; 2 layers
    weights = 2 * (4 * 32 * 32 + 2 * 32 * 48)
    per_rank = 2 * (4 * 64 + 2 * 80)
    assert shira_rank(model, density=0.1) == round(0.1 * weights / per_rank)


def test_information_bound_bytes() -> None:
    manifest = {"tensors": {"a": {"shape": [10, 20], "nnz": 7, "encoding": "elias_fano"},
                            "b": {"shape": [5], "nnz": 5, "encoding": "dense"}}}
    expected = (12 * 4 * 8 + information_bound_bits(200, 7)) / 8
    assert information_bound_bytes(manifest, value_bytes=4) == pytest.approx(expected)


def _machine() -> dict:
    return {"cpu": "test cpu", "torch_threads": 2, "gpu": None, "python": "3", "torch": "t",
            "transformers": "x", "peft": "p", "date": "2026-01-01"}


def _write(directory, name: str, payload: dict) -> None:
    (directory / f"{name}.json").write_text(json.dumps(
        {"name": name, "command": f"python -m benchmarks {name}", "machine": _machine(),
         **payload}))


# The page's tables are checked by their facts (numbers, verdicts, names in their cells), not by
# their prose, so that rewording a row keeps these tests passing and a wrong figure does not.

def _rows(text: str) -> list[list[str]]:
    """Every row of every Markdown table in `text` (header rows too), as its cells' texts."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]


def _names(cell: str, fact: str) -> bool:
    """Whether `cell` contains `fact` as a whole word: "sparse" is not in "sparse_delta",
    "large-sparse" or "sparse+houlsby", "0.6" is not in "0.60", "merged" not in "unmerged"."""
    return re.search(rf"(?<![\w.+-]){re.escape(fact)}(?![\w.+-])", cell) is not None


def _numbers(cell: str) -> list[float]:
    """The numbers of a cell in order: "+1.50 points (2 seeds)" -> [1.5, 2.0]."""
    return [float(n) for n in re.findall(r"[-+]?\d+(?:\.\d+)?", cell.replace(",", ""))]


@dataclasses.dataclass
class _Target:
    target: str  # what is judged, as the page words it
    measured: list[float]  # the numbers of the measured cell
    verdict: str  # "met", "missed", or "–" for a context row


def _targets(text: str, *facts: str) -> list[_Target]:
    """The rows of the page's Targets table whose target cell names every one of `facts`."""
    block = text[text.index(markdown.TARGETS_BEGIN):text.index(markdown.TARGETS_END)]
    rows = [row for row in _rows(block)[1:] if all(_names(row[0], f) for f in facts)]
    return [_Target(target, _numbers(measured), verdict.strip("*"))
            for target, measured, verdict in rows]


def _target(text: str, *facts: str) -> _Target:
    """The one Targets row that names every one of `facts`."""
    found = _targets(text, *facts)
    assert len(found) == 1, (facts, found)
    return found[0]


def test_markdown_regenerates_between_markers_and_keeps_the_rest(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    stat = {"median": 1.0, "min": 0.9, "max": 1.1, "rounds": 3}
    memory = {"peak_bytes": 2_000_000, "resident_before_bytes": 1_000_000,
              "working_set_bytes": 1_000_000, "ratio_to_floor": 1.0,
              "working_set_ratio_to_floor": 1.0}
    competitors = {
        name: {"description": name, "trainable_parameters": 10,
               "step_seconds": stat, "ratio_to_floor": {**stat, "median": ratio},
               "ratio_to_lora": {**stat, "median": ratio / 1.5},
               "memory": {**memory, "ratio_to_floor": ratio,
                          "peak_bytes": int(2e6 * ratio)}}
        for name, ratio in (("floor", 1.0), ("lora", 1.5), ("sparse", 1.05),
                            ("sparse_delta", 1.4))}
    _write(tmp_path, "train_step", {"batch_size": 32, "sequence_length": 64, "rounds": 3,
                                    "warmup_steps": 1, "timed_steps_per_round": 3,
                                    "memory_steps": 3, "competitors": competitors})
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Benchmarks\n\nhand-written intro\n\n{markdown.BEGIN}\nold\n"
                    f"{markdown.END}\n\nhand-written end\n")
    markdown.regenerate(page)
    text = page.read_text()
    assert "hand-written intro" in text and "hand-written end" in text and "\nold\n" not in text
    # the page opens with the Targets, then its hand-written text, then the tables
    assert text.startswith("# Benchmarks\n\n" + markdown.TARGETS_BEGIN)
    assert text.index(markdown.TARGETS_END) < text.index("hand-written intro") \
        < text.index(markdown.BEGIN)
    assert all(text.count(marker) == 1 for marker in (markdown.TARGETS_BEGIN, markdown.BEGIN))
    sparse = _target(text, "sparse", "step", "floor")
    assert _names(sparse.target, "1.10") and (sparse.measured, sparse.verdict) == ([1.05], "met")
    delta = _target(text, "sparse_delta", "step", "floor")
    assert _names(delta.target, "1.25") and (delta.measured, delta.verdict) == ([1.4], "missed")
    assert _target(text, "sparse", "memory", "floor").verdict == "met"  # 1.05 ≤ 1.10
    assert (tmp_path / "train_step.png").stat().st_size > 1000
    markdown.regenerate(page)  # idempotent: the same page again
    assert page.read_text() == text


def test_accuracy_resume_keeps_only_runs_with_unchanged_settings() -> None:
    from benchmarks.accuracy import kept_runs

    method = {"group": "matched", "description": "m", "learning_rate": 1e-2,
              "head_learning_rate": None}
    settings = {"train_rows": 2048, "epochs": 1,
                "methods": {"a": method, "b": {**method, "learning_rate": 1e-3}}}
    runs = {f"rt/{name}/0": {"accuracy": 0.5} for name in ("a", "b", "c")}
    previous = {"settings": {**settings, "methods": {"a": method, "b": method, "c": method}},
                "runs": runs}
    # b's learning rate changed: its run is stale; c is not run now and stays
    assert set(kept_runs(previous, settings)) == {"rt/a/0", "rt/c/0"}
    # a run whose method the file does not describe (written by another process) stays
    undescribed = {**previous, "settings": {**settings, "methods": {"b": method}}}
    assert set(kept_runs(undescribed, settings)) == {"rt/a/0", "rt/c/0"}
    assert kept_runs(previous, {**settings, "epochs": 2}) == {}
    assert kept_runs({}, settings) == {}


def _accuracy_payload(steps: int, accuracy: dict[str, float]) -> dict:
    method = {"group": "matched", "description": "m", "learning_rate": 1e-2,
              "head_learning_rate": None}
    runs = {f"rt/{name}/{seed}": {"accuracy": value, "nonzero_values": 100, "steps": steps}
            for name, value in accuracy.items() for seed in (0, 1)}
    summary = {"rt": {name: {"mean": value, "std": 0.0, "seeds": 2}
                      for name, value in accuracy.items()}}
    return {"settings": {"train_rows": 64, "eval_rows": 32, "epochs": 1, "batch_size": 32,
                         "sequence_length": 64, "budget_fraction": 0.005,
                         "methods": dict.fromkeys([*accuracy, "ghost"], method)},
            "runs": runs, "summary": summary}


def _regenerated_page(directory) -> str:
    """BENCHMARKS.md written in `directory` from the result files there."""
    page = directory / "BENCHMARKS.md"
    markdown.regenerate(page)
    return page.read_text()


def test_markdown_reports_targets_for_every_accuracy_budget(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)
    _write(tmp_path, "accuracy", _accuracy_payload(64, {"full": 0.80, "lora": 0.78,
                                                        "sparse": 0.77}))
    _write(tmp_path, "accuracy_256", _accuracy_payload(256, {"full": 0.85, "lora": 0.83,
                                                             "sparse": 0.845, "head": 0.75,
                                                             "claim_dense_r64": 0.82,
                                                             "claim_snip_0.6": 0.83,
                                                             "claim_random_0.2": 0.805}))
    text = _regenerated_page(tmp_path)
    # the paper's claims are judged at every length that ran them (here only 256 steps):
    # measured in points against the dense r=64 adapter, then the number of seeds
    snip = _target(text, "rt", "256 steps", "SNIP", "0.6", "dense")
    assert (snip.measured, snip.verdict) == ([1.0, 2], "met")
    random = _target(text, "rt", "256 steps", "random", "0.2", "dense")
    assert (random.measured, random.verdict) == ([-1.5, 2], "missed")
    assert not _targets(text, "large-sparse") and not _targets(text, "64 steps", "dense")
    assert [(r.measured, r.verdict) for r in _targets(text, "64 steps")] == [
        ([-3.0, 2], "missed"), ([-1.0, 2], "missed")]  # sparse − full, sparse − LoRA
    assert len(_targets(text, "256 steps")) == 3 + 2  # full, LoRA, context; two claims
    full = _target(text, "rt", "256 steps", "sparse", "full")
    assert (full.measured, full.verdict) == ([-0.5, 2], "met")
    lora = _target(text, "rt", "256 steps", "sparse", "LoRA")
    assert (lora.measured, lora.verdict) == ([1.5, 2], "met")
    # share of the head-only → full gap: sparse 95%, LoRA 80%, head only 0.750; not judged
    context = _target(text, "rt", "256 steps", "context")
    assert (context.measured, context.verdict) == ([95, 80, 0.75], "–")
    assert not _targets(text, "64 steps", "context")  # no head-only runs at 64 steps
    assert any(line.startswith("## ") and "(256 steps)" in line for line in text.splitlines())
    assert "`python -m benchmarks accuracy_256`" in text  # the longer run's own command
    assert (tmp_path / "accuracy.png").exists()
    assert "ghost" not in text  # described by the settings, but without a single run


def test_markdown_judges_each_latency_and_shows_other_sizes_as_context(tmp_path,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)

    def timing(ratio: float) -> dict:
        return {"seconds": {"median": 0.1 * ratio, "min": 0.1 * ratio, "max": 0.1 * ratio,
                            "rounds": 3},
                "ratio_to_base": {"median": ratio, "min": ratio - 0.01, "max": ratio + 0.01,
                                  "rounds": 3}}

    latency = {"base": timing(1.0), "sparse": timing(1.02), "large_sparse": timing(1.17),
               "large_sparse_matched": {**timing(1.06),
                                        "description": "large-sparse r=24→120, matched"},
               "sparse_delta_merged": timing(0.99)}
    mixed = {"rows_per_batch": 32, "adapters_in_mixed_batch": 8,
             "single_rows_per_second": 100.0, "mixed_rows_per_second": 90.0,
             "mixed_over_single_throughput": {"median": 0.9, "min": 0.85, "max": 0.95}}
    swap = {"median": 3e-4, "min": 2e-4, "max": 4e-4, "repeats": 10}
    _write(tmp_path, "inference", {
        "batch_size": 32, "sequence_length": 64, "rounds": 3, "latency": latency,
        "mixed_batch": {"bottleneck": mixed},
        "hot_swap": {"set_adapter_seconds": swap, "load_adapter_from_disk_seconds": swap,
                     "load_base_model_seconds": swap, "adapter": "sparse"}})
    text = _regenerated_page(tmp_path)
    sparse = _target(text, "unmerged", "sparse", "latency")
    assert _names(sparse.target, "1.10") and (sparse.measured, sparse.verdict) == ([1.02], "met")
    large = _target(text, "unmerged", "large_sparse", "latency")
    assert (large.measured, large.verdict) == ([1.17], "missed")
    # another size of the same method is shown beside it, by its description, not judged
    context = _target(text, "context", "latency")
    assert "large-sparse r=24→120, matched" in context.target
    assert (context.measured, context.verdict) == ([1.06], "–")
    assert not _targets(text, "large_sparse_matched")
    described = [row for row in _rows(text) if row[0].startswith("large_sparse_matched:")]
    assert len(described) == 1 and "large-sparse r=24→120, matched" in described[0][0]
    assert _numbers(described[0][2])[0] == 1.06  # × base
    merged = _target(text, "merged", "sparse_delta", "base")
    assert (merged.measured, merged.verdict) == ([0.99, 0.98, 1.0], "met")  # median, rounds


def test_validation_rows_are_held_out_from_the_training_rows() -> None:
    from benchmarks.accuracy import validation_rows

    @dataclasses.dataclass(eq=False)  # identity, as the loader's rows
    class Row:
        text: str
        label: int

    split = [Row(f"r{i}", i % 2) for i in range(40)]
    training = split[:10]
    held_out = validation_rows(split, training, 12, seed=3)
    assert len(held_out) == 12 and not {id(r) for r in held_out} & {id(r) for r in training}
    assert [r.label for r in held_out].count(0) == 6  # stratified
    assert held_out == validation_rows(split, training, 12, seed=3)  # fixed seed
    assert validation_rows(split, training, 0, seed=3) == []


def test_swept_entries_scale_only_the_learning_rate() -> None:
    from benchmarks.accuracy import Entry, sweep_base, swept

    entry = Entry("full", "matched", "full fine-tuning", build=lambda *a: None,
                  learning_rate=1e-4, head_learning_rate=2e-3)
    half, double = swept([entry], [0.5, 2])
    assert (half.name, half.learning_rate, half.head_learning_rate) == ("full@0.5x", 5e-5, 2e-3)
    assert double.learning_rate == 2e-4 and double.description.endswith("lr 0.0002")
    assert sweep_base("full@0.5x") == ("full", 0.5) and sweep_base("full") == ("full", 1.0)


def test_varied_entries_change_only_the_warm_up_or_the_heads_rate() -> None:
    from benchmarks.accuracy import Entry, method_of, method_settings, swept, train_config, varied

    from spadapt.train import TrainConfig

    entry = Entry("sparse+postln", "variants", "sparse adapter", build=lambda *a: None,
                  learning_rate=1e-2)
    default, none, longer = varied([entry], [0.1, 0, 0.2], [])
    assert default == entry and method_settings(default) == method_settings(entry)
    assert "warmup_ratio" not in method_settings(default)  # older result files still resume
    assert (none.name, none.warmup_ratio, none.learning_rate) == ("sparse+postln+warmup0", 0, 1e-2)
    assert method_settings(longer)["warmup_ratio"] == 0.2
    assert longer.description == "sparse adapter, warm-up 0.2"
    same, triple = varied([entry], [], [1, 3])
    assert same == entry
    assert (triple.name, triple.head_learning_rate) == ("sparse+postln+head3x", 3e-2)
    assert method_of(triple.name) == "sparse"
    full = Entry("full", "matched", "full", build=lambda *a: None, learning_rate=1e-4,
                 head_learning_rate=2e-3)
    (head,) = varied([full], [], [0.5])  # the recipe's own head rate is the one scaled
    assert head.head_learning_rate == 1e-3 and head.learning_rate == 1e-4
    (both,) = swept(varied([entry], [0], [3]), [2])  # the head's rate stays under an lr sweep
    assert both.name == "sparse+postln+warmup0+head3x@2x"
    assert (both.learning_rate, both.head_learning_rate, both.warmup_ratio) == (2e-2, 3e-2, 0)
    config = train_config(both, epochs=2, seed=1)
    assert (config.warmup_ratio, config.learning_rate, config.head_learning_rate) == (0, 2e-2, 3e-2)
    assert train_config(entry, epochs=2, seed=1).warmup_ratio == TrainConfig().warmup_ratio


def test_training_settings_are_paired_with_the_recipes_by_dataset_and_seed() -> None:
    from benchmarks.settings_markdown import setting_pairs, settings_section

    def run(validation: float, accuracy: float) -> dict:
        return {"validation_accuracy": validation, "accuracy": accuracy}

    runs = {"rt/sparse@1x/0": run(0.80, 0.79), "rt/sparse@1x/1": run(0.82, 0.80),
            "rt/sparse+head3x@1x/0": run(0.81, 0.78), "rt/sparse+head3x@1x/1": run(0.84, 0.80),
            "r8/sparse@1x/0": run(0.95, 0.96), "r8/sparse+head3x@1x/0": run(0.94, 0.97),
            "rt/lora+warmup0@1x/0": run(0.7, 0.7)}  # its recipe's run is missing: not paired
    assert setting_pairs(runs) == [("sparse+head3x@1x", "sparse@1x", "head3x")]
    lines = settings_section({"runs": runs, "summary": {"rt": {}, "r8": {}}})
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines
            if line.startswith("| sparse@1x")]
    assert rows[0][2:] == ["rt", "+1.50 ± 0.50 (2)", "-0.50 ± 0.50 (2)", ""]
    assert rows[1][2:] == ["r8", "-1.00 (1)", "+1.00 (1)", ""]
    assert rows[2][2:] == ["**mean of 2**", "+0.25 (≥ 0.5 on 1 of 2)", "",
                           "the recipe's stays"]
    runs["r8/sparse+head3x@1x/0"] = run(0.955, 0.96)  # +0.5 on R8 as well: enough on both
    (mean,) = [line for line in settings_section({"runs": runs, "summary": {"rt": {}, "r8": {}}})
               if "mean of" in line]
    assert mean.endswith("| **replaces the recipe's** |")
    assert settings_section({"runs": {"rt/sparse@1x/0": run(0.8, 0.8)},
                             "summary": {"rt": {}}}) == []


def _sweep_payload(validation: dict[str, float], accuracy: dict[str, float]) -> dict:
    """A sweep result: `validation` (seed 0) and evaluation `accuracy` per swept name."""
    runs = {f"rt/{name}/0": {"accuracy": accuracy[name], "nonzero_values": 100, "steps": 256,
                             "validation_accuracy": value}
            for name, value in validation.items()}
    methods = {name: {"group": "matched", "description": "m",
                      "learning_rate": 1e-3 * float(name.split("@")[1][:-1]),
                      "head_learning_rate": None} for name in validation}
    summary = {"rt": {name: {"mean": accuracy[name], "std": 0.0, "seeds": 1}
                      for name in validation}}
    return {"settings": {"train_rows": 64, "eval_rows": 32, "validation_rows": 16, "epochs": 1,
                         "batch_size": 32, "sequence_length": 64, "budget_fraction": 0.005,
                         "methods": methods},
            "runs": runs, "summary": summary}


def test_sweep_chooses_on_validation_and_reports_the_evaluation_rows(tmp_path,
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)
    validation = {"sparse@0.5x": 0.80, "sparse@1x": 0.78, "sparse+houlsby@1x": 0.85,
                  "full@1x": 0.81, "full@2x": 0.81, "lora@1x": 0.70, "lora@2x": 0.79}
    # evaluation accuracy would choose otherwise: the choice must not look at it
    accuracy = {"sparse@0.5x": 0.795, "sparse@1x": 0.90, "sparse+houlsby@1x": 0.91,
                "full@1x": 0.80, "full@2x": 0.95, "lora@1x": 0.99, "lora@2x": 0.78}
    _write(tmp_path, "sweep_256", _sweep_payload(validation, accuracy))
    # another configuration of the method at the same budget competes with it
    assert markdown.chosen_runs(markdown.load_result("sweep_256"))["rt"]["sparse"] == \
        "sparse+houlsby@1x"
    validation["sparse+random@1x"] = validation["sparse+houlsby@1x"]  # a tie: name order
    accuracy["sparse+random@1x"] = 0.5
    _write(tmp_path, "sweep_256", _sweep_payload(validation, accuracy))
    assert markdown.chosen_runs(markdown.load_result("sweep_256"))["rt"]["sparse"] == \
        "sparse+houlsby@1x"
    validation["sparse@1x"] = 0.85  # a tie with the method's own configuration: that one
    _write(tmp_path, "sweep_256", _sweep_payload(validation, accuracy))
    assert markdown.chosen_runs(markdown.load_result("sweep_256"))["rt"]["sparse"] == \
        "sparse@1x"
    # a training-setting variant is judged by its own rule (settings_markdown), not chosen
    with_head = {**validation, "sparse+head3x@1x": 0.99}
    _write(tmp_path, "sweep_256", _sweep_payload(with_head, {**accuracy,
                                                             "sparse+head3x@1x": 0.5}))
    assert markdown.chosen_runs(markdown.load_result("sweep_256"))["rt"]["sparse"] == \
        "sparse@1x"
    for name in ("sparse+houlsby@1x", "sparse+random@1x", "sparse@1x"):
        validation[name] = 0.78 if name == "sparse@1x" else 0.79
    _write(tmp_path, "sweep_256", _sweep_payload(validation, accuracy))
    assert markdown.chosen_runs(markdown.load_result("sweep_256")) == {
        "rt": {"sparse": "sparse@0.5x", "full": "full@1x", "lora": "lora@2x"}}  # tie: 1 ×
    text = _regenerated_page(tmp_path)
    full = _target(text, "rt", "256 steps", "tuned", "sparse", "full")
    assert (full.measured, full.verdict) == ([-0.5, 1], "met")  # the chosen runs' evaluation
    lora = _target(text, "rt", "256 steps", "tuned", "sparse", "LoRA")
    assert (lora.measured, lora.verdict) == ([1.5, 1], "met")

    def swept(configuration: str, scale: float) -> list:
        """[learning rate, scale, validation, evaluation mean, std, seeds, chosen] of a run."""
        rows = [row for row in _rows(text) if len(row) == 6 and row[0] == "rt"
                and row[1].split(":")[0] == configuration and _numbers(row[2])[1] == scale]
        assert len(rows) == 1, (configuration, scale, rows)
        _, _, rate, validated, evaluated, chosen = rows[0]
        return [*_numbers(rate), *_numbers(validated), *_numbers(evaluated), chosen]

    assert swept("sparse", 0.5) == [0.0005, 0.5, 0.8, 0.795, 0.0, 1, "✓"]
    assert swept("sparse", 1) == [0.001, 1, 0.78, 0.9, 0.0, 1, ""]
    assert swept("sparse+houlsby", 1) == [0.001, 1, 0.79, 0.91, 0.0, 1, ""]
    assert [swept(name, scale)[-1] for name, scale in
            (("full", 1), ("full", 2), ("lora", 1), ("lora", 2))] == ["✓", "", "", "✓"]


def test_variants_keep_their_methods_matched_budget_and_run_only_when_named() -> None:
    from benchmarks.accuracy import entries, method_of, nonzero_values
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)  # MiniLM's shapes (384 wide, 6 layers), a small vocabulary
    base = BertForSequenceClassification(BertConfig(
        vocab_size=512, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=1536, num_labels=2))
    listed = {entry.name: entry for entry in entries(base)}
    variants = [name for name, entry in listed.items() if not entry.by_default]
    assert {method_of(name) for name in variants} == {"sparse", "sparse_delta"}
    assert all(listed[method_of(name)].by_default for name in variants)
    batch = make_batch("bert", rows=4, length=8)
    batch["labels"] = batch["labels"] % 2

    def kept(name: str) -> int:
        model = listed[name].build(copy.deepcopy(base), ["a", "b"], [batch], 0)
        if not model.masks_final("default"):  # a lottery chooses at prune_end: count then
            model.finalize_masks()
        return nonzero_values(model)

    values = {name: kept(name) for name in ["sparse", "sparse_delta", *variants]}
    for name in variants:
        assert abs(values[name] / values[method_of(name)] - 1) < 0.03, (name, values)


def test_head_only_reference_trains_the_new_head_and_nothing_else(bert) -> None:
    from benchmarks.accuracy import entries, nonzero_values

    base = copy.deepcopy(bert)
    head = {entry.name: entry for entry in entries(base)}["head"]
    model = head.build(base, ["a", "b"], [], 0)
    assert nonzero_values(model) == sum(p.numel() for p in model.classifier.parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = make_batch("bert", rows=8, length=16)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=head.learning_rate)
    for _ in range(3):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"classifier.weight", "classifier.bias"}


def test_sparse_methods_section_pairs_each_variant_with_its_baselines_by_seed(tmp_path,
                                                                            monkeypatch) -> None:
    from benchmarks import markdown

    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)
    accuracy = {("rt", "sparse_delta"): [0.80, 0.82], ("rt", "full"): [0.83, 0.84],
                ("rt", "lora"): [0.81, 0.80], ("rt", "sparse_delta+regrow"): [0.81, 0.85],
                ("rt", "sparse"): [0.825, 0.835]}
    runs = {f"{d}/{name}/{seed}": {"accuracy": value, "nonzero_values": 10, "steps": 16}
            for (d, name), values in accuracy.items() for seed, value in enumerate(values)}
    runs["rt/sparse_delta+regrow/2"] = {"accuracy": 0.5, "nonzero_values": 10,
                                        "steps": 16}  # no pair
    result = {"runs": runs, "settings": {"epochs": 1, "train_rows": 256, "batch_size": 32,
                                         "methods": {n: {} for _, n in accuracy}},
              "summary": {"rt": {"sparse_delta": {"mean": 0.81, "seeds": 2},
                                 "sparse_delta+regrow": {"mean": 0.72, "seeds": 3},
                                 "sparse": {"mean": 0.83, "seeds": 2}}}}
    assert markdown.paired_difference(runs, "rt", "sparse_delta+regrow", "sparse_delta") == \
        pytest.approx((0.02, 0.01, 2))
    assert markdown.paired_difference(runs, "rt", "sparse_delta+regrow", "nothing") is None
    lines = markdown.sparse_methods_section(result)
    assert lines[0] == "## Sparse methods against full fine-tuning and LoRA (16 steps)"

    def cells(name: str) -> list[str]:
        row = next(line for line in lines if f"| {name} |" in line)
        return [cell.strip() for cell in row.strip("|").split("|")]

    # vs sparse_delta: +1, +3 points; vs full: -2, +1; vs LoRA: 0, +5
    assert cells("sparse_delta+regrow") == ["rt", "sparse_delta+regrow", "0.7200 (3)",
                                            "+2.00 ± 1.00 (2)", "-0.50 ± 1.50 (2)",
                                            "+2.50 ± 2.50 (2)", "**met**"]
    assert cells("sparse_delta")[3] == "–" and cells("sparse_delta")[6] == "**missed**"
    # sparse: -0.5 points from full on both seeds, +1.5 and +3.5 over LoRA
    assert cells("sparse")[4:] == ["-0.50 ± 0.00 (2)", "+2.50 ± 1.00 (2)", "**met**"]
    assert (tmp_path / "accuracy_16_paired.png").stat().st_size > 0
    assert markdown.sparse_methods_section({**result, "settings": {
        **result["settings"], "methods": {"sparse_delta": {}}}}) == []


def test_tuned_method_is_judged_against_the_best_other_sparse_method(tmp_path,
                                                                     monkeypatch) -> None:
    from benchmarks import markdown

    monkeypatch.setattr(markdown, "RESULTS_DIR", tmp_path)
    accuracy = {"full": [0.83, 0.84], "lora": [0.81, 0.80], "sparse": [0.80, 0.80],
                "sparse_delta": [0.82, 0.83], "sparse_delta+regrow": [0.90],
                "tuned_rt": [0.825, 0.835]}
    runs = {f"rt/{name}/{seed}": {"accuracy": value, "nonzero_values": 10, "steps": 16}
            for name, values in accuracy.items() for seed, value in enumerate(values)}
    methods = {name: {} for name in accuracy}
    methods["tuned_rt"] = {"group": "tuned", "description": "Found by spadapt tune: x"}
    summary = {"rt": {name: {"mean": sum(v) / len(v), "seeds": len(v)}
                      for name, v in accuracy.items()}}
    result = {"runs": runs, "summary": summary,
              "settings": {"epochs": 1, "train_rows": 256, "batch_size": 32,
                           "methods": methods}}
    lines = markdown.sparse_methods_section(result)
    row = next(line for line in lines if "| tuned_rt |" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # the best other method with the most seeds is sparse_delta (0.825), not the 1-seed regrow
    assert cells[3] == "+0.50 ± 0.00 (2) vs sparse_delta"
    assert cells[4:] == ["-0.50 ± 0.00 (2)", "+2.50 ± 1.00 (2)", "**met**"]
    assert "- tuned_rt (rt): Found by spadapt tune: x" in lines
    assert markdown.tuned_target_rows(result) == [
        ("rt, 16 steps: tuned_rt (spadapt tune's choice) within 1 point of full",
         "-0.50 ± 0.00 (2)", "**met**"),
        ("rt, 16 steps: tuned_rt (spadapt tune's choice) ≥ the best other sparse method "
         "(sparse_delta)", "+0.50 ± 0.00 (2)", "**met**")]
    # a tuned method alone (no variants) still gets the section
    del methods["sparse_delta+regrow"]
    assert markdown.sparse_methods_section(result)[0].startswith("## Sparse methods")


def test_recipe_file_runs_as_a_tuned_entry_with_its_own_rates(tmp_path) -> None:
    from benchmarks.accuracy import recipe_entries

    path = tmp_path / "best.yaml"
    path.write_text("name: tuned\ndescription: Found by spadapt tune\nkind: spadapt\n"
                    "adapter: {method: sparse_delta, density: 0.004, scorer: fisher, "
                    "score_batches: 6}\ntrain: {learning_rate: 0.02}\n")
    (entry,) = recipe_entries([f"tuned_rt={path}"])
    assert (entry.name, entry.group, entry.description) == ("tuned_rt", "tuned",
                                                            "Found by spadapt tune")
    assert (entry.learning_rate, entry.head_learning_rate) == (0.02, None)
    assert entry.calibration_batches == 6  # what the study's trial scored on
    for bad in ("tuned_rt", f"={path}", f"a/b={path}"):
        with pytest.raises(SystemExit, match="NAME=PATH"):
            recipe_entries([bad])
    (tmp_path / "lora.yaml").write_text("name: l\nkind: lora\ntrain: {learning_rate: 0.001}\n")
    with pytest.raises(SystemExit, match="spadapt recipe"):
        recipe_entries([f"l={tmp_path / 'lora.yaml'}"])


def test_generate_summary_pairs_each_method_with_full_and_lora_by_seed() -> None:
    from benchmarks.generate import summary

    def run(loss: float, rouge: float) -> dict:
        return {"metric": "rouge_l", "eval_loss": loss, "perplexity": 2.718 ** loss,
                "exact_match": 0.0, "rouge_l": rouge, "nonzero_params": 10, "adapter_bytes": 99}

    runs = {"qa/full/0": run(2.0, 0.30), "qa/full/1": run(2.2, 0.28),
            "qa/lora/0": run(2.1, 0.25), "qa/lora/1": run(2.4, 0.24),
            "qa/sparse_delta/0": run(2.05, 0.29), "qa/sparse_delta/1": run(2.15, 0.30),
            "qa/sparse_delta/2": run(9.0, 0.0)}  # a seed the others lack: not paired
    rows = {r["method"]: r for r in summary({"runs": runs})}
    delta = rows["sparse_delta"]
    assert delta["seeds"] == 3 and delta["eval_loss"] == pytest.approx((2.05 + 2.15 + 9) / 3)
    mean, se, seeds = delta["loss_vs_full"]  # differences 0.05 and -0.05
    assert mean == pytest.approx(0.0) and se == pytest.approx(0.05) and seeds == 2
    mean, se, seeds = delta["loss_vs_lora"]  # -0.05 and -0.25
    assert mean == pytest.approx(-0.15) and se == pytest.approx(0.1) and seeds == 2
    assert "loss_vs_full" not in rows["full"] and rows["full"]["loss_vs_lora"][0] < 0


def test_generate_section_judges_loss_and_file_size_targets() -> None:
    from benchmarks.markdown import generate_section

    def run(loss: float, nonzero: int, size: int) -> dict:
        return {"metric": "rouge_l", "eval_loss": loss, "perplexity": 2.718 ** loss,
                "exact_match": 0.1, "rouge_l": 0.3, "nonzero_params": nonzero,
                "adapter_bytes": size}

    result = {"settings": {"steps": 64, "batch_size": 8, "max_length": 128,
                           "max_new_tokens": 32, "eval_rows": 200, "precision": "bf16"},
              "runs": {"qa/full/0": run(2.00, 100, 4000), "qa/lora/0": run(2.10, 90, 900),
                       "qa/shira/0": run(2.20, 90, 1800), "qa/sparse_delta/0": run(2.03, 100, 600),
                       # seed 1 without LoRA: the two comparisons rest on different seeds
                       "qa/full/1": run(2.10, 100, 4000), "qa/sparse_delta/1": run(2.13, 100, 600)}}
    text = "\n".join(generate_section(result))
    assert "| qa | sparse_delta | 2 | 2.080 |" in text
    assert "64 steps" in text.splitlines()[0] and "forwards in bf16" in text
    assert ("qa: sparse_delta − full fine-tuning +0.030 nats over 2 seeds (bar ≤ +0.05): "
            "**met**") in text
    # sparse_delta keeps more values than LoRA: shown, not judged
    assert ("qa: sparse_delta with 1.11 × LoRA's values − LoRA -0.070 nats over 1 seed "
            "(not judged: the bar is at equal values)") in text
    assert "at equal values (" not in text  # sparse_delta_at_lora not run
    # per value: (600 / 100) / (1800 / 90) = 0.30
    assert "file per stored value = 0.30 × PEFT SHiRA's (bar ≤ 0.45): **met**" in text
    result["runs"]["qa/sparse_delta_at_lora/0"] = run(2.12, 90, 540)
    text = "\n".join(generate_section(result))
    assert ("qa: at equal values (90 against LoRA's 90), sparse_delta_at_lora − LoRA +0.020 "
            "nats over 1 seed (bar ≤ 0): **missed**") in text


def test_generate_target_rows_pair_by_seed_and_name_missing_seeds() -> None:
    from benchmarks.markdown import generate_target_rows

    def run(loss: float) -> dict:
        return {"metric": "exact_match", "eval_loss": loss, "perplexity": 2.718 ** loss,
                "exact_match": 0.4, "rouge_l": 0.4, "nonzero_params": 100, "adapter_bytes": 500}

    result = {"settings": {"steps": 256},
              "runs": {"qa/full/0": run(1.00), "qa/full/1": run(1.20),
                       "qa/lora/0": run(1.02), "qa/lora/1": run(1.10),
                       "qa/sparse_delta/0": run(1.04), "qa/sparse_delta/1": run(1.30),
                       "qa/sparse_delta_at_lora/0": run(1.01),
                       "qa/sparse_delta_at_lora/1": run(1.14),
                       "chat/full/0": run(2.0), "chat/lora/0": run(2.3),
                       "chat/sparse_delta/0": run(2.2)}}
    rows = {target: (measured, judged) for target, measured, judged
            in generate_target_rows(result)}
    # qa: differences vs full 0.04 and 0.10 (mean 0.07, se 0.03); vs LoRA 0.02 and 0.20
    assert rows["qa, decoder, 256 steps: sparse_delta eval loss within 0.05 nats of full"] \
        == ("+0.070 ± 0.030 nats (2)", "**missed** on 2 of 3 seeds")
    assert rows["qa, decoder, 256 steps: (context) sparse_delta, with more values than LoRA, "
                "eval loss − PEFT LoRA's"] == ("+0.110 ± 0.090 nats (2)", "–")
    # at LoRA's count: -0.01 and +0.04 (mean 0.015, se 0.025)
    assert rows["qa, decoder, 256 steps: sparse_delta at LoRA's count of values: eval loss ≤ "
                "PEFT LoRA's"] == ("+0.015 ± 0.025 nats (2)", "**missed** on 2 of 3 seeds")
    assert rows["chat, decoder, 256 steps: sparse_delta eval loss within 0.05 nats of full"] \
        == ("+0.200 nats (1)", "**missed** on 1 of 3 seeds")
    assert rows["chat, decoder, 256 steps: (context) sparse_delta, with more values than LoRA, "
                "eval loss − PEFT LoRA's"] == ("-0.100 nats (1)", "–")
    assert len(rows) == 5  # chat has no run at LoRA's count: no judged LoRA row
    result["runs"]["chat/sparse_delta_at_lora/0"] = run(2.25)
    rows = {target: (measured, judged) for target, measured, judged
            in generate_target_rows(result)}
    assert rows["chat, decoder, 256 steps: sparse_delta at LoRA's count of values: eval loss "
                "≤ PEFT LoRA's"] == ("-0.050 nats (1)", "**met** on 1 of 3 seeds")


def test_generate_refuses_to_resume_a_file_of_other_settings(tmp_path) -> None:
    import argparse
    import json

    from benchmarks import generate

    out = tmp_path / "generate.json"  # written before precision was recorded: fp32
    out.write_text(json.dumps({"runs": {}, "settings": {
        "model": "builtin:smollm2", "steps": 48, "batch_size": 8, "max_length": 128,
        "max_new_tokens": 32, "eval_rows": 150}}))
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    for arguments in (["--steps", "256", "--eval-rows", "150"],  # more steps
                      ["--steps", "48", "--eval-rows", "150", "--precision", "bf16"]):
        with pytest.raises(SystemExit, match="holds runs with other settings"):
            generate.main(parser.parse_args([*arguments, "--resume", "--out", str(out)]))


def test_levers_section_judges_int8_and_checkpointing() -> None:
    from benchmarks.markdown import levers_section

    def run(length: int, peak: float, step: float, loss: float) -> dict:
        return {"length": length, "steps": 4, "peak_bytes": int(peak * 1e9),
                "step_seconds_median": step, "loss_last4": loss}

    text = "\n".join(levers_section({"runs": {
        "fp32": run(128, 4.0, 5.0, 2.00), "int8": run(128, 1.6, 5.5, 2.03),
        "fp32_512": run(512, 10.0, 30.0, 3.0), "checkpointing_512": run(512, 7.0, 45.0, 3.0)}}))
    assert "| int8 | 128 | 4 | 1.60 GB | 5.50 s | 2.0300 |" in text
    assert "peak 0.40 × the fp32 base's (bar ≤ 0.45): **met**" in text
    assert "loss after 4 steps 1.50% from fp32's (bar ≤ 2%): **met**" in text
    assert "peak 0.70 × (bar ≤ 0.6): **missed**; step 1.50 × (bar ≤ 1.4): **missed**" in text


def test_selection_run_average_counts_regrowths_until_prune_end() -> None:
    """A 256-step run regrows at steps 20, 40, ..., 160 (prune_end 0.7 × 256 = 179): 8 cycles
    at the regrow competitor's cost, the other 4.8 at the plain sparse delta's."""
    from benchmarks import selection

    assert selection.regrowth_steps(256) == 8
    assert selection.regrowth_steps(319) == 11  # 20, ..., 220 < 0.7 × 319
    medians = {"floor": 10.0, "sparse_delta": 12.0, "sparse_delta_regrow": 14.0}
    assert selection.run_seconds("sparse_delta_regrow", medians, 256) == pytest.approx(
        8 * 14.0 + (256 / 20 - 8) * 12.0)
    assert selection.run_seconds("sparse_delta", medians, 256) == pytest.approx(12.0 / 20 * 256)


def test_quick_poc_section_marks_the_recommendation_and_judges_time_and_picks(
        tmp_path) -> None:
    from benchmarks import poc_markdown

    def method(name, accuracy, nonzero, **extra):
        return {"name": name, "accuracy": accuracy, "macro_f1": accuracy, "trained": True,
                "nonzero_params": nonzero, "trainable_params": nonzero,
                "adapter_bytes": 4 * nonzero, "train_seconds": 60.0, "wall_seconds": 70.0,
                "step_seconds_median": 0.5, "peak_memory_bytes": 10**9,
                **extra}

    def run(dataset, seconds, methods, **extra):
        result = {"dataset": {"name": f"builtin:{dataset}", "train_rows": 100,
                              "eval_rows": 10, "labels": ["a", "b"]},
                  "base_model": {"name": "tiny", "parameters": 1_000_000},
                  "budget": "quick", "seed": 0, "methods": methods, **extra}
        if seconds is not None:
            result["run_seconds"] = seconds
        (tmp_path / f"poc_quick_{dataset}_seed0.json").write_text(json.dumps(result))

    full = method("full", 0.80, 1_000_000)
    run("alpha", 540.0, [full, method("lora", 0.79, 5_000), method("sparse", 0.795, 2_000)],
        precision="bf16")
    run("beta", 660.0, [full, method("lora", 0.795, 5_000), method("sparse", 0.70, 2_000)])
    run("gamma", None, [full, method("sparse_delta", 0.81, 9_000),
                        {"name": "adapter", "error": "RuntimeError: boom"}])
    runs = poc_markdown.quick_runs(tmp_path)
    assert [r["dataset"]["name"] for r in runs] == [
        "builtin:alpha", "builtin:beta", "builtin:gamma"]
    section = "\n".join(poc_markdown.quick_section(runs))
    assert "| alpha | 0 | bf16 | 9 min 00 s | sparse ★ | accuracy | 0.795 |" in section
    assert "| beta | 0 | fp32 | 11 min 00 s | lora ★ |" in section
    assert "| gamma | 0 | fp32 | — | sparse_delta ★ |" in section
    assert "| gamma | 0 | fp32 | — | adapter | failed: RuntimeError: boom |" in section
    rows = poc_markdown.quick_target_rows(runs)
    assert rows[:2] == [("alpha: quick PoC (seed 0, bf16) ≤ 10 min", "9.0 min", "**met**"),
                        ("beta: quick PoC (seed 0, fp32) ≤ 10 min", "11.0 min", "**missed**")]
    target, measured, said = rows[2]
    assert "≥ 3 datasets" in target and said == "**missed**"
    assert measured == "2 of 3 (alpha: sparse, beta: lora, gamma: sparse_delta)"


def test_matched_sparse_delta_keeps_exactly_loras_count_of_values() -> None:
    """`sparse_delta_at_lora` stores as many values as the generative PoC's LoRA trains, where
    the builtin sparse_delta (1% of the weights) stores more."""
    from benchmarks.generate import MATCHED, matched_delta_recipe

    import spadapt
    from conftest import tiny_llama
    from spadapt.peft_methods import lora_model
    from spadapt.poc import load_methods

    (lora,) = load_methods("generate", ["lora"], tiny_llama())
    lora_values = sum(p.numel() for p in lora_model(tiny_llama(), lora.lora, classifier=False)
                      .parameters() if p.requires_grad)
    recipe = matched_delta_recipe(tiny_llama())
    matched = spadapt.attach(tiny_llama(), recipe.adapter_config()).parameter_report()
    builtin = spadapt.attach(tiny_llama(), spadapt.recipe.load_recipe("sparse_delta")
                             .adapter_config()).parameter_report()
    assert recipe.name == MATCHED and f"{lora_values:,}" in recipe.description
    assert matched["nonzero"] == lora_values != builtin["nonzero"]


def test_generate_lr_keeps_a_country_on_one_side_and_refuses_other_settings(tmp_path) -> None:
    import argparse
    import json

    from benchmarks import generate_lr

    assert generate_lr.validation_group("country_qa", "What is the capital of Côte d'Ivoire?") \
        == "Côte d'Ivoire"
    assert generate_lr.validation_group("country_qa", "What do you call a person from Peru?") \
        == "Peru"
    assert generate_lr.validation_group("chatterbot_qa", "Do you like music?") \
        == "Do you like music?"
    with pytest.raises(ValueError, match="not a country_qa question"):
        generate_lr.validation_group("country_qa", "Who are you?")
    out = tmp_path / "rates.json"
    out.write_text(json.dumps({"settings": {"steps": 24, "batch_size": 8, "max_length": 128,
                                            "validation_rows": 64, "precision": "fp32"},
                               "runs": {}}))
    parser = argparse.ArgumentParser()
    generate_lr.add_arguments(parser)
    with pytest.raises(SystemExit, match="holds runs with other settings"):
        generate_lr.main(parser.parse_args(["--steps", "256", "--resume", "--out", str(out)]))


def test_generate_lr_section_marks_each_recipes_rate_and_the_best() -> None:
    from benchmarks.markdown import generate_lr_section

    def run(loss: float) -> dict:
        return {"eval_loss": loss, "rouge_l": 0.2}

    text = "\n".join(generate_lr_section({
        "settings": {"steps": 256, "batch_size": 8, "validation_rows": 100,
                     "precision": "bf16"},
        "runs": {"qa/sparse_delta_at_lora/0.01": run(1.5),
                 "qa/sparse_delta_at_lora/0.03": run(1.4),
                 "qa/lora/0.002": run(1.45), "qa/lora/0.005": run(1.6)}}))
    assert text.startswith("## Decoder learning rates, on validation rows, 256 steps")
    assert "256 steps of 8 rows in bf16, scored on 100 validation rows" in text
    # the matched sparse delta's own rate is sparse_delta's recipe's
    assert "| qa | sparse_delta_at_lora | 0.01 ★ | 1.500 | 20.0% |" in text
    assert "| qa | sparse_delta_at_lora | 0.03 | **1.400** | 20.0% |" in text
    assert "| qa | lora | 0.002 ★ | **1.450** | 20.0% |" in text
    assert "| qa | lora | 0.005 | 1.600 | 20.0% |" in text


def test_generate_lr_variants_change_only_the_adapters_schedule() -> None:
    from benchmarks.generate_lr import VARIANTS, method_recipe

    from spadapt.recipe import load_recipe

    recipes = {"sparse_delta": load_recipe("sparse_delta"), "lora": load_recipe("lora")}
    assert method_recipe(recipes, "lora") is recipes["lora"]
    regrow = method_recipe(recipes, "sparse_delta+regrow")
    assert regrow.name == "sparse_delta+regrow"
    assert regrow.adapter == {**recipes["sparse_delta"].adapter, **VARIANTS["regrow"]}
    assert regrow.adapter_config().schedule == "regrow"  # valid settings
    assert method_recipe(recipes, "sparse_delta+lottery").adapter_config().schedule == "lottery"
    for bad, message in (("sparse_delta+nope", "optionally with"), ("shira", "methods are"),
                         ("lora+regrow", "spadapt recipes only")):
        with pytest.raises(SystemExit, match=message):
            method_recipe(recipes, bad)
