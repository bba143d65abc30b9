"""`train.base_quantization: int8`: the frozen base held in int8 (torchao) under adapters of
every kind trained in full precision; the saved adapter is the same format and loads on the
fp32 base; merging is refused; what cannot be quantized says why."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import spadapt
from conftest import inputs_of, make_batch, output_of, tiny_bert, tiny_llama
from spadapt.model import AdapterError
from spadapt.quantize import QuantizationError, dequantized, is_quantized, quantize_frozen_linears

pytest.importorskip("torchao")

SPARSE_DELTA = spadapt.AdapterConfig(method="sparse_delta", density=0.05, scorer="magnitude")
BOTTLENECK = spadapt.AdapterConfig(bottleneck=8, density=0.5, scorer="magnitude")


def _linear_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: module.weight for name, module in model.named_modules()
            if isinstance(module, nn.Linear)}


def _train(model: nn.Module, batch: dict, steps: int = 8, lr: float = 2e-2) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def test_int8_base_quantizes_only_frozen_base_linears() -> None:
    model = spadapt.attach(tiny_llama(), BOTTLENECK, calibration=None)
    count = model.quantize_base("int8")
    weights = _linear_weights(model.base_model)
    quantized = {name for name, weight in weights.items() if is_quantized(weight)}
    assert count == len(quantized) == 14  # 2 layers × (q, k, v, o, gate, up, down)
    assert not any(".adapters." in f".{name}." for name in quantized)  # adapters stay fp32
    assert "lm_head" not in quantized  # the output embedding (tied to the input's) too
    for name, weight in weights.items():
        if name in quantized:
            assert weight.qdata.dtype == torch.int8
            # int8 values and one scale per output row: about a quarter of fp32's bytes
            stored = weight.qdata.numel() + weight.scale.numel() * weight.scale.element_size()
            assert stored < 0.3 * weight.numel() * 4
    assert model.base_quantization == "int8"
    assert model.quantize_base("int8") == 0  # already quantized: nothing more to do


def test_sparse_delta_on_int8_base_trains_saves_and_loads_on_the_fp32_base(tmp_path) -> None:
    fp32 = tiny_llama()
    batch = make_batch("llama")
    model = spadapt.attach(copy.deepcopy(fp32), SPARSE_DELTA, calibration=None)
    positions = {n: t.positions.clone() for n, t in model.export_adapter("default").items()}
    model.quantize_base("int8")
    quantized_before = {n: dequantized(w).clone() for n, w in
                        _linear_weights(model.base_model).items() if is_quantized(w)}
    losses = _train(model, batch)
    assert losses[-1] < losses[0] - 0.1, losses
    # the base did not move; the values did, at the positions chosen on the fp32 weights
    for name, weight in _linear_weights(model.base_model).items():
        if name in quantized_before:
            assert torch.equal(dequantized(weight), quantized_before[name])
    exported = model.export_adapter("default")
    assert all(torch.equal(exported[n].positions, positions[n]) for n in positions)
    assert any(t.values.abs().sum() > 0 for t in exported.values())

    # W + Δ uses the dequantized W, exactly
    site, module = next(iter(model.adapter_modules("default")))
    layer = site.base_layer
    x = torch.randn(3, layer.in_features)
    expected = nn.functional.linear(x, dequantized(layer.weight) + module.delta_dense(),
                                    layer.bias)
    with torch.no_grad():
        assert torch.allclose(site(x), expected, atol=1e-5)

    path = model.save_adapter(tmp_path / "int8-trained")
    reference = spadapt.attach(copy.deepcopy(fp32), SPARSE_DELTA, calibration=None)
    reference_path = reference.save_adapter(tmp_path / "fp32")
    manifest = (path / "manifest.json").read_text()
    assert sorted(p.name for p in path.iterdir()) == sorted(p.name for p in
                                                            reference_path.iterdir())
    # the fingerprint is the unquantized base's: the adapter loads on the fp32 base
    loaded = spadapt.AdaptedModel(copy.deepcopy(fp32))
    loaded.set_adapter(loaded.load_adapter(path))
    assert '"weights_sha256"' in manifest
    quantized_out, fp32_out = output_of(model, batch), output_of(loaded, batch)
    # same adapter, base off by int8 rounding only
    assert (quantized_out - fp32_out).abs().max() < 0.05 * fp32_out.abs().max()


def test_bottleneck_adapter_on_int8_base_gets_gradients_through_frozen_int8_layers() -> None:
    model = spadapt.attach(tiny_bert(), BOTTLENECK, calibration=[make_batch("bert")])
    model.quantize_base("int8")
    batch = make_batch("bert", rows=8)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.train()
    model(**batch).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    # the first layer's adapter gets gradients through the int8 layers above it (its up
    # projection starts at zero, so that is where they show first)
    first = [n for n in grads if ".layer.0." in n and ".adapters." in n and n.endswith("up.weight")]
    assert first and all(grads[n] is not None and grads[n].abs().sum() > 0 for n in first)
    losses = _train(model, batch, steps=10)
    assert losses[-1] < losses[0]
    after = dict(model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_merging_into_an_int8_base_is_refused() -> None:
    model = spadapt.attach(tiny_llama(), SPARSE_DELTA, calibration=None)
    model.quantize_base("int8")
    with pytest.raises(AdapterError, match="int8-quantized.*merge on the unquantized base"):
        model.merge_adapter()


def test_train_loop_quantizes_adapters_and_lora_and_refuses_full_fine_tuning() -> None:
    from peft import LoraConfig, get_peft_model

    from spadapt.train import TrainConfig, TrainConfigError, train
    from train_fixtures import base_model, examples, task

    rows = examples(24)
    config = TrainConfig(learning_rate=1e-2, epochs=1, batch_size=8, eval_batch_size=8,
                         base_quantization="int8", early_stopping_patience=None,
                         checkpoint_every=0, progress=False, log_csv=False,
                         log_tensorboard=False)
    classifier = task()
    adapted = spadapt.attach(base_model(classifier.tokenizer.vocab_size), BOTTLENECK,
                             calibration=None)
    result = train(adapted, classifier, rows, rows[:8], config)
    assert result.steps == 3 and adapted.base_quantization == "int8"

    lora = get_peft_model(base_model(classifier.tokenizer.vocab_size),
                          LoraConfig(task_type="SEQ_CLS", r=2, target_modules="all-linear"))
    train(lora, classifier, rows, rows[:8], config)
    quantized = [n for n, m in lora.named_modules() if isinstance(m, nn.Linear)
                 and is_quantized(m.weight)]
    assert quantized and all("base_layer" in n for n in quantized)

    full = base_model(classifier.tokenizer.vocab_size)
    for parameter in full.parameters():
        parameter.requires_grad_(True)
    with pytest.raises(TrainConfigError, match="no frozen linear weight to quantize"):
        train(full, classifier, rows, rows[:8], config)
    with pytest.raises(ValueError, match="base_quantization"):
        TrainConfig(base_quantization="int4")


def test_nf4_and_unknown_modes_say_what_is_missing() -> None:
    base = tiny_bert()
    for parameter in base.parameters():
        parameter.requires_grad_(False)
    if not torch.cuda.is_available():
        with pytest.raises(QuantizationError, match="bitsandbytes on a CUDA GPU.*int8"):
            quantize_frozen_linears(base, "nf4")
    with pytest.raises(QuantizationError, match="must be one of"):
        quantize_frozen_linears(base, "fp8")
    assert quantize_frozen_linears(base, "none") == 0
    assert not any(is_quantized(m.weight) for m in base.modules() if isinstance(m, nn.Linear))


def test_int8_base_forward_is_close_to_fp32() -> None:
    fp32 = tiny_bert()
    quantized = copy.deepcopy(fp32)
    for parameter in quantized.parameters():
        parameter.requires_grad_(False)
    quantize_frozen_linears(quantized, "int8", keep=lambda name: name == "classifier")
    batch = inputs_of(make_batch("bert"))
    with torch.no_grad():
        ref, out = fp32(**batch).logits, quantized(**batch).logits
    assert not torch.equal(ref, out) and (ref - out).abs().max() < 0.02 * ref.abs().max() + 1e-3


def test_frozen_int8_linears_keep_no_dequantized_weight_for_backward() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 4))
    model.requires_grad_(False)
    reference = copy.deepcopy(model)
    quantize_frozen_linears(model, "int8")
    for quantized, plain in ((model[0], reference[0]), (model[2], reference[2])):
        plain.weight.data = dequantized(quantized.weight).clone()  # the same values, in fp32
    x = torch.randn(8, 64, requires_grad=True)
    x_reference = x.detach().clone().requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t,
                                                  lambda t: t):
        out = model(x)
    out.square().sum().backward()
    reference(x_reference).square().sum().backward()
    assert saved == [8 * 128]  # ReLU's output only: no weight, no dequantized copy
    torch.testing.assert_close(x.grad, x_reference.grad, rtol=1e-5, atol=1e-6)
