"""The behaviours every method × placement × scorer × schedule must show, on tiny BERT, Llama and
GPT-2 models (PEFT's common-test idea): equal to the base at init, only adapter parameters
change, pruned weights stay zero with an exact budget, save/load round trip, disable = base,
unload = base bit-exact, mixed-adapter batches = per-adapter runs, generate for decoders."""

from __future__ import annotations

import copy

import pytest
import torch

import spadapt
from conftest import MATRIX, MODELS, Case, make_batch, output_of, train_steps, trained
from spadapt.masks import MaskedWeight, budget_total
from spadapt.methods import SparseDelta


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_attached_model_starts_equal_to_base(case: Case) -> None:
    base = MODELS[case.family]()
    batch = make_batch(case.family)
    reference = output_of(base, batch)
    model = spadapt.attach(base, case.adapter_config(), calibration=[batch])
    model.eval()
    assert torch.equal(output_of(model, batch), reference)


def test_training_changes_only_adapter_parameters(case: Case) -> None:
    run = trained(case)
    frozen = {n for n, p in run.model.named_parameters() if not p.requires_grad}
    trainable = [n for n, p in run.model.named_parameters() if p.requires_grad]
    assert trainable and all(".adapters.a." in n for n in trainable)
    assert not torch.allclose(output_of(run.model, run.batch), output_of(run.pristine, run.batch))
    # Every base parameter is bit-identical to the untouched copy.
    pristine = dict(run.pristine.named_parameters())
    for name, parameter in run.model.base_model.named_parameters():
        if ".adapters." in name:
            continue
        assert name in frozen or f"base_model.{name}" in frozen
        assert torch.equal(parameter, pristine[name.replace(".base_layer", "")]), name


def test_pruned_weights_stay_zero_and_budget_is_exact(case: Case) -> None:
    run = trained(case)
    config = run.model.configs["a"]
    modules = [m for _, m in run.model.adapter_modules("a")]
    if config.method == "sparse_delta":
        deltas = [m for m in modules if isinstance(m, SparseDelta)]
        sizes = {str(i): d.shape[0] * d.shape[1] for i, d in enumerate(deltas)}
        assert sum(d.values.numel() for d in deltas) == budget_total(sizes, config.density,
                                                                     config.budget)
        return
    weights = [w for m in modules for w in m.modules() if isinstance(w, MaskedWeight)]
    assert weights
    if config.density == 1.0:
        assert all(w.mask is None for w in weights)
        return
    sizes = {str(i): w.weight.numel() for i, w in enumerate(weights)}
    assert sum(w.kept for w in weights) == budget_total(sizes, config.density, config.budget)
    for w in weights:
        assert w.log_alpha is None  # gates are folded at finalize
        assert torch.count_nonzero(w.weight[~w.mask]) == 0  # raw parameter, not weight*mask


def test_save_load_round_trip(case: Case, tmp_path) -> None:
    run = trained(case)
    run.model.save_adapter(tmp_path / "adapter")
    loaded = spadapt.load_adapter(copy.deepcopy(run.pristine), tmp_path / "adapter")
    loaded.eval()
    assert torch.equal(output_of(loaded, run.batch), output_of(run.model, run.batch))
    assert loaded.parameter_report("a") == run.model.parameter_report("a")


def test_disable_equals_base(case: Case) -> None:
    run = trained(case)
    with run.model.disable_adapter():
        assert torch.equal(output_of(run.model, run.batch), output_of(run.pristine, run.batch))


def test_unload_gives_base_back_bit_exact(case: Case) -> None:
    run = trained(case)
    model = copy.deepcopy(run.model)
    if model.configs["a"].method == "sparse_delta":
        model.merge_adapter("a")  # unload must also undo a merge exactly
    base = model.unload()
    _assert_same_state(_state(base), _state(run.pristine))
    assert [type(m) for m in base.modules()] == [type(m) for m in run.pristine.modules()]


def test_mixed_batch_equals_per_adapter_runs(case: Case) -> None:
    run = trained(case)
    model = copy.deepcopy(run.model)
    other = case.adapter_config(seed=7)
    model.add_adapter("b", other, calibration=[make_batch(case.family, seed=3)])
    model.set_adapter("b")
    train_steps(model, make_batch(case.family, seed=4))
    batch = make_batch(case.family, rows=5, seed=9)
    routes = ["a", "b", "__base__", "b", "a"]
    mixed = output_of(model, batch, adapter_names=routes)
    expected = {}
    for name in ("a", "b"):
        model.set_adapter(name)
        expected[name] = output_of(model, batch)
    with model.disable_adapter():
        expected["__base__"] = output_of(model, batch)
    for row, name in enumerate(routes):
        torch.testing.assert_close(mixed[row], expected[name][row], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(expected["a"], expected["b"])


DECODER_CASES = [c for c in MATRIX if c.family != "bert"]


@pytest.mark.parametrize("case", DECODER_CASES, ids=lambda c: c.id)
def test_generate_with_adapters(case: Case) -> None:
    run = trained(case)
    model = run.model
    batch = make_batch(case.family, rows=3, length=5, seed=11)
    kwargs = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    routed = model.generate(**{k: batch[k] for k in ("input_ids", "attention_mask")},
                            adapter_names=["a", "__base__", "a"], **kwargs)
    active = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            **kwargs)
    base = run.pristine.generate(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"], **kwargs)
    assert routed.shape == (3, 9)
    assert torch.equal(routed[0], active[0]) and torch.equal(routed[2], active[2])
    assert torch.equal(routed[1], base[1])


def test_a_change_to_one_tests_trained_model_does_not_reach_the_next() -> None:
    case = MATRIX[0]
    first = trained(case)
    expected = output_of(first.model, first.batch)
    first.model.delete_adapter("a")
    with torch.no_grad():
        for parameter in first.model.parameters():
            parameter.add_(1.0)
    second = trained(case)
    assert second.model.adapter_names == ["a"]
    assert torch.equal(output_of(second.model, second.batch), expected)
