"""The public API's contract and edge cases: config validation, adapter management, routing
errors, architecture errors, parameter reports."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import spadapt
from conftest import Case, make_batch, output_of, tiny_bert, tiny_llama, train_steps, trained
from spadapt import AdapterConfig, AdapterError, ConfigError
from spadapt.arch import ArchitectureError
from spadapt.masks import MaskedWeight, keep_pruned_at_zero, kept_count

DELTA = Case("bert", dict(method="sparse_delta", scorer="magnitude", density=0.05))
SNIP = Case("bert", dict(method="bottleneck", scorer="snip", density=0.2))


@pytest.mark.parametrize("density", [0.0, -0.1, 1.0001, 2, math.nan, "0.2", True])
def test_density_outside_zero_one_is_rejected(density) -> None:
    with pytest.raises(ConfigError, match="density"):
        AdapterConfig(density=density)


@pytest.mark.parametrize("fields, message", [
    (dict(method="lora"), "method"),
    (dict(placement="sideways"), "placement"),
    (dict(scorer="oracle"), "scorer"),
    (dict(schedule="sometimes"), "schedule"),
    (dict(budget="team"), "budget"),
    (dict(bottleneck=0), "bottleneck"),
    (dict(method="sparse_delta", schedule="gradual", scorer="magnitude"), "sparse_delta"),
    (dict(method="sparse_delta", scorer="synflow"), "synflow"),
    (dict(schedule="gradual", scorer="snip"), "magnitude"),
    (dict(prune_start=0.8, prune_end=0.5), "prune_start"),
    (dict(target_modules="query"), "target_modules"),
])
def test_invalid_config_names_the_field(fields, message) -> None:
    with pytest.raises(ConfigError, match=message):
        AdapterConfig(**fields)


def test_config_json_round_trip_and_unknown_fields() -> None:
    config = AdapterConfig(method="bottleneck", placement="houlsby", bottleneck=32, density=0.1,
                           scorer="grasp", large_sparse=True, labels=["no", "yes"], seed=3)
    assert AdapterConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="colour"):
        AdapterConfig.from_dict({**config.to_dict(), "colour": "red"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        AdapterConfig.from_json("{density")


def test_post_ln_placement_reads_the_normalised_output_of_each_ffn_block() -> None:
    model = spadapt.attach(tiny_bert(), AdapterConfig(placement="post_ln", bottleneck=4))
    sites = sorted(w.site_name for w, _ in model.adapter_modules("default")
                   if w.site_name != "classifier")  # the head, trained densely
    assert sites == ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]
    layer = model.base_model.get_submodule(sites[0])
    adapter = dict(layer.adapters)["default"]
    with torch.no_grad():
        adapter.up.weight.normal_()
    hidden, residual = torch.randn(2, 3, 48), torch.randn(2, 3, 32)
    with torch.no_grad():
        block = layer.base_layer(hidden, residual)  # LayerNorm(dense(hidden) + residual)
        torch.testing.assert_close(layer(hidden, residual), block + adapter(block))


def test_large_sparse_keeps_the_dense_non_zero_budget() -> None:
    dense = AdapterConfig(bottleneck=8, density=1.0)
    wide = AdapterConfig(bottleneck=8, density=0.25, large_sparse=True, scorer="magnitude")
    assert wide.effective_bottleneck == 32
    dense_model = spadapt.attach(tiny_bert(), dense)
    wide_model = spadapt.attach(tiny_bert(), wide)
    dense_weights = sum(m.down.kept + m.up.kept for _, m in dense_model.adapter_modules("default")
                        if hasattr(m, "down"))
    wide_weights = sum(m.down.kept + m.up.kept for _, m in wide_model.adapter_modules("default")
                       if hasattr(m, "down"))
    assert wide_weights == kept_count(0.25, 4 * dense_weights) == dense_weights


def test_unknown_architecture_lists_families_and_target_modules() -> None:
    from transformers import DistilBertConfig, DistilBertModel

    base = DistilBertModel(DistilBertConfig(vocab_size=61, dim=32, n_layers=2, n_heads=2,
                                            hidden_dim=48))
    with pytest.raises(ArchitectureError) as error:
        spadapt.attach(base, AdapterConfig(bottleneck=4))
    message = str(error.value)
    assert "distilbert" in message and "BERT-like" in message and "Llama-like" in message
    assert "target_modules" in message
    model = spadapt.attach(base, AdapterConfig(bottleneck=4, target_modules=[r"ffn\.lin2$"]))
    assert len(model.adapter_modules("default")) == 2
    delta = spadapt.attach(DistilBertModel(base.config), AdapterConfig(
        method="sparse_delta", density=0.1, target_modules=[r"attention\.(q|v)_lin$"]))
    assert len(delta.adapter_modules("default")) == 4


def test_sparse_delta_targets_must_be_linear() -> None:
    with pytest.raises(ValueError, match="not an nn.Linear"):
        spadapt.attach(tiny_bert(), AdapterConfig(method="sparse_delta", density=0.1,
                                                  target_modules=[r"layer\.0\.output$"]))


def test_an_adapter_after_the_bert_output_block_reads_its_layernormed_output(tmp_path) -> None:
    # README: target_modules=[r"layer\.\d+\.output$"] places the adapter after the FFN block's
    # LayerNorm (the sparse adapter configuration BENCHMARKS.md calls `postln`)
    base = tiny_bert()
    pristine = copy.deepcopy(base)
    model = spadapt.attach(base, AdapterConfig(bottleneck=4, density=0.5, scorer="magnitude",
                                               target_modules=[r"layer\.\d+\.output$"]))
    sites = [name for name, module in model.base_model.named_modules()
             if getattr(module, "adapters", None) and "default" in module.adapters
             and name.split(".")[0] != "classifier"]
    assert sites == ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]
    batch = make_batch("bert", rows=2)
    assert torch.equal(output_of(model, batch), output_of(pristine, batch))  # starts as the base
    train_steps(model, batch)
    block = model.base_model.bert.encoder.layer[1].output
    seen = {}
    block.base_layer.LayerNorm.register_forward_hook(lambda m, a, out: seen.update(ln=out))
    adapter = block.adapters["default"]
    adapter.register_forward_hook(lambda m, a, out: seen.update(input=a[0], added=out))
    block.register_forward_hook(lambda m, a, out: seen.update(out=out))
    output_of(model, batch)
    assert torch.equal(seen["input"], seen["ln"])  # the adapter reads the normalised stream
    assert torch.equal(seen["out"], seen["ln"] + seen["added"])
    assert seen["added"].abs().max() > 0
    loaded = spadapt.load_adapter(pristine, model.save_adapter(tmp_path / "postln"))
    assert torch.equal(output_of(loaded, batch), output_of(model, batch))


def test_data_scorers_need_calibration() -> None:
    with pytest.raises(AdapterError, match="calibration"):
        spadapt.attach(tiny_bert(), AdapterConfig(density=0.2, scorer="snip"))
    with pytest.raises(AdapterError, match="no loss"):
        batch = make_batch("bert")
        spadapt.attach(tiny_bert(), AdapterConfig(density=0.2, scorer="snip"),
                       calibration=[{"input_ids": batch["input_ids"]}])


def test_delete_unknown_or_merged_adapter_raises_and_changes_nothing() -> None:
    model = copy.deepcopy(trained(DELTA).model)
    batch = trained(DELTA).batch
    before = output_of(model, batch)
    with pytest.raises(AdapterError, match="no adapter named 'ghost'"):
        model.delete_adapter("ghost")
    assert torch.equal(output_of(model, batch), before)
    model.merge_adapter("a")
    merged = output_of(model, batch)
    with pytest.raises(AdapterError, match="merged"):
        model.delete_adapter("a")
    assert model.adapter_names == ["a"] and torch.equal(output_of(model, batch), merged)
    model.unmerge_adapter()
    model.delete_adapter("a")
    assert model.adapter_names == [] and model.active_adapter is None
    assert not model._wrappers()


def test_merge_rules() -> None:
    bottleneck = copy.deepcopy(trained(SNIP).model)
    with pytest.raises(AdapterError, match="cannot be merged"):
        bottleneck.merge_adapter("a")
    model = copy.deepcopy(trained(DELTA).model)
    model.add_adapter("b", DELTA.adapter_config(seed=4))
    model.merge_adapter("a")
    batch = make_batch("bert", rows=2)
    with pytest.raises(AdapterError, match="merged"):
        output_of(model, batch, adapter_names=["a", "b"])
    with pytest.raises(AdapterError, match="merged"):
        model.set_adapter("b")
    with pytest.raises(AdapterError, match="merged"), model.disable_adapter():
        pass
    with pytest.raises(AdapterError, match="already merged"):
        model.merge_adapter("a")


def test_names_and_routing_errors() -> None:
    model = copy.deepcopy(trained(SNIP).model)
    batch = make_batch("bert", rows=3)
    for bad in ("", "__base__", "a/b", "..", "x" * 65):
        with pytest.raises(AdapterError, match="invalid"):
            model.add_adapter(bad, AdapterConfig(bottleneck=4))
    with pytest.raises(AdapterError, match="already exists"):
        model.add_adapter("a", AdapterConfig(bottleneck=4))
    with pytest.raises(AdapterError, match="unknown adapter"):
        output_of(model, batch, adapter_names=["a", "nope", "a"])
    with pytest.raises(ValueError, match="one name per input row"):
        output_of(model, batch, adapter_names=["a", "a"])
    with pytest.raises(AdapterError, match="list"):
        output_of(model, batch, adapter_names="a")
    with pytest.raises(AdapterError, match="no adapter named"):
        model.set_adapter("nope")


def test_adding_an_adapter_does_not_change_the_active_one() -> None:
    run = trained(SNIP)
    model = copy.deepcopy(run.model)
    before = output_of(model, run.batch)
    model.add_adapter("b", SNIP.adapter_config(seed=9), calibration=[run.batch])
    assert model.active_adapter == "a"
    assert torch.equal(output_of(model, run.batch), before)
    trainable = {n.split(".adapters.")[1].split(".")[0]
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"a"}


def test_parameter_report_counts_kept_values() -> None:
    run = trained(SNIP)
    report = run.model.parameter_report()
    base = sum(p.numel() for p in run.pristine.parameters())
    modules = [m for _, m in run.model.adapter_modules("a")]
    dense_weights = sum(m.down.weight.numel() + m.up.weight.numel() for m in modules
                        if hasattr(m, "down"))
    kept = sum(m.down.kept + m.up.kept for m in modules if hasattr(m, "down"))
    other = sum(p.numel() for m in modules for n, p in m.named_parameters()
                if n not in ("down.weight", "up.weight"))
    assert report["base"] == base
    assert report["trainable"] == dense_weights + other
    assert report["nonzero"] == kept + other
    assert kept == kept_count(0.2, dense_weights)


def test_adapters_on_the_same_linear_layer_compose() -> None:
    """A bottleneck and a sparse delta can both sit on BERT's output.dense."""
    run = trained(SNIP)
    model = copy.deepcopy(run.model)
    model.add_adapter("d", DELTA.adapter_config())
    model.set_adapter("d")
    with torch.no_grad():
        for _, module in model.adapter_modules("d"):
            if hasattr(module, "values"):
                module.values.normal_()
    batch = make_batch("bert", rows=3)
    mixed = output_of(model, batch, adapter_names=["a", "d", "__base__"])
    model.set_adapter("a")
    torch.testing.assert_close(mixed[0], output_of(model, batch)[0])
    model.delete_adapter("d")
    assert torch.equal(output_of(model, run.batch), output_of(run.model, run.batch))


def test_llama_sequence_classification_head_travels(tmp_path) -> None:
    from transformers import LlamaForSequenceClassification

    config = tiny_llama().config
    config.num_labels = 2
    torch.manual_seed(0)
    base = LlamaForSequenceClassification(config).eval()
    pristine = copy.deepcopy(base)
    model = spadapt.attach(base, AdapterConfig(bottleneck=4, density=0.5, scorer="magnitude"))
    with torch.no_grad():
        model.base_model.score.adapters["default"].module.weight.normal_()
    batch = make_batch("llama", rows=2)
    path = model.save_adapter(tmp_path / "cls")
    loaded = spadapt.load_adapter(pristine, path)
    assert torch.equal(output_of(loaded, batch), output_of(model, batch))


def test_pruned_entries_get_zero_gradient_and_zero_optimizer_state() -> None:
    base = tiny_bert()
    config = Case("bert", dict(method="bottleneck", scorer="magnitude", schedule="gradual",
                               density=0.2)).adapter_config()
    model = spadapt.attach(base, config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2,
                                  weight_decay=0.1)
    keep_pruned_at_zero(model, optimizer)
    weights = [m for _, a in model.adapter_modules("default") for m in a.modules()
               if isinstance(m, MaskedWeight)]
    batch = make_batch("bert")
    model.train()
    steps, pruned_seen = 8, 0
    for step in range(1, steps + 1):
        model(**batch).loss.backward()
        for w in weights:
            if w.mask is not None:
                pruned_seen += 1
                assert torch.count_nonzero(w.weight.grad[~w.mask]) == 0
        optimizer.step()
        for w in weights:
            if w.mask is not None:
                assert torch.count_nonzero(w.weight[~w.mask]) == 0
                for state in optimizer.state[w.weight].values():
                    if state.shape == w.weight.shape:
                        assert torch.count_nonzero(state[~w.mask]) == 0
        optimizer.zero_grad()
        model.step_schedule(step, steps)
    assert pruned_seen > 0
