"""Parity with straightforward reference computations: a dense Pfeiffer bottleneck against a
hand-written adapter hooked into the plain model, sparse deltas merged against W + Δ by hand,
and the sparse-gradient kernel against dense autograd."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers.pytorch_utils import Conv1D

import spadapt
from conftest import Case, make_batch, output_of, trained
from spadapt.methods import SparseDelta, sparse_delta
from spadapt.methods.sparse_delta import (
    SPARSE_PRODUCT_MAX_TOKENS,
    SparseDeltaLinear,
    canonical_weight,
)

DENSE_PFEIFFER = Case("bert", dict(method="bottleneck", placement="pfeiffer", density=1.0))


def test_dense_pfeiffer_equals_reference_adapter() -> None:
    run = trained(DENSE_PFEIFFER)
    reference = copy.deepcopy(run.pristine)
    reference.classifier.load_state_dict(run.model.base_model.classifier.adapters["a"].module
                                         .state_dict())
    for index, layer in enumerate(reference.bert.encoder.layer):
        wrapper = run.model.base_model.bert.encoder.layer[index].output.dense
        adapter = wrapper.adapters["a"]
        down_w, down_b = adapter.down.weight.detach(), adapter.down_bias.detach()
        up_w, up_b = adapter.up.weight.detach(), adapter.up_bias.detach()

        def hook(module, args, output, down_w=down_w, down_b=down_b, up_w=up_w, up_b=up_b):
            # Pfeiffer: h + up(relu(down(h))) on the feed-forward output, before the residual+LN
            return output + (torch.relu(output @ down_w.T + down_b) @ up_w.T + up_b)

        layer.output.dense.register_forward_hook(hook)
    assert adapter.up.weight.abs().sum() > 0  # trained, so the adapter really contributes
    torch.testing.assert_close(output_of(run.model, run.batch), output_of(reference, run.batch),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_sparse_delta_merged_equals_base_plus_delta_by_hand(family: str) -> None:
    run = trained(Case(family, dict(method="sparse_delta", scorer="magnitude", density=0.05)))
    model = copy.deepcopy(run.model)
    unmerged = output_of(model, run.batch)
    by_hand = copy.deepcopy(run.pristine)
    hand_modules = dict(by_hand.named_modules())
    for wrapper, delta in model.adapter_modules("a"):
        if not isinstance(delta, SparseDelta):
            continue
        target = canonical_weight(hand_modules[wrapper.site_name])
        with torch.no_grad():
            dense = torch.zeros_like(target).flatten()
            dense[delta.indices] = delta.values.detach()
            target += dense.view(target.shape)
        assert delta.values.abs().sum() > 0
    model.merge_adapter("a")
    merged = output_of(model, run.batch)
    # Merged weights are exactly W + Δ (the same single rounding as by hand).
    for wrapper, delta in model.adapter_modules("a"):
        if isinstance(delta, SparseDelta):
            assert torch.equal(canonical_weight(wrapper.base_layer),
                               canonical_weight(hand_modules[wrapper.site_name]))
    if family == "bert":
        by_hand.classifier.load_state_dict(model.base_model.classifier.adapters["a"].module
                                           .state_dict())
    assert torch.equal(merged, output_of(by_hand, run.batch))
    torch.testing.assert_close(merged, unmerged, rtol=1e-6, atol=1e-6)
    model.unmerge_adapter()
    assert torch.equal(output_of(model, run.batch), unmerged)


def _layer_with_random_delta(layer_type: str, density: float, seed: int):
    """A 24 → 40 Linear or Conv1D and a SparseDelta of random positions and values on it."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(24, 40) if layer_type == "linear" else Conv1D(40, 24)
    weight = canonical_weight(layer)
    delta = SparseDelta(tuple(weight.shape), torch.float32, torch.device("cpu"))
    positions = torch.randperm(weight.numel())[: max(1, round(density * weight.numel()))]
    delta.set_positions(positions.sort().values)
    with torch.no_grad():
        delta.values.normal_()
    return layer, delta


@pytest.mark.parametrize("layer_type", ["linear", "conv1d"])
@pytest.mark.parametrize("density", [0.01, 0.3, 1.0])
@pytest.mark.parametrize("step", ["plain", "regrow", "weight_grad"])
def test_sparse_gradient_equals_dense_autograd(layer_type: str, density: float,
                                               step: str) -> None:
    """plain: the values' gradient is the sampled product. regrow (an armed regrowth) and
    weight_grad (a scorer's gradient of the frozen weight): the dense weight gradient is
    formed, and the values' gradient is read from it."""
    layer, delta = _layer_with_random_delta(layer_type, density, seed=0)
    layer.requires_grad_(step == "weight_grad")
    if step == "regrow":
        delta.arm_regrow(3)
    weight = canonical_weight(layer)
    x = torch.randn(3, 7, 24, requires_grad=True)
    target = torch.randn(3, 7, 40)
    loss = ((delta.linear(x, layer) - target) ** 2).sum()
    wanted = [x, delta.values] + ([layer.weight] if step == "weight_grad" else [])
    grads = torch.autograd.grad(loss, wanted)
    # Straightforward: a dense Δ tensor, dense autograd.
    values = delta.values.detach().clone().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    weight_ref = layer.weight.detach().clone().requires_grad_(True)
    canonical_ref = weight_ref.t() if layer_type == "conv1d" else weight_ref
    dense = torch.zeros(weight.numel()).index_put((delta.indices,), values).view(weight.shape)
    loss_ref = ((F.linear(x_ref, canonical_ref + dense, layer.bias) - target) ** 2).sum()
    grads_ref = torch.autograd.grad(loss_ref, [x_ref, values, weight_ref][:len(wanted)])
    torch.testing.assert_close(loss, loss_ref)
    torch.testing.assert_close(grads[0], grads_ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads_ref[1], rtol=1e-5, atol=1e-4)
    if step == "weight_grad":
        torch.testing.assert_close(grads[2], grads_ref[2], rtol=1e-5, atol=1e-4)
    if step == "regrow":
        assert delta.probe.positions is not None  # the regrowth's candidates were collected


def _two_sparse_deltas(family: str):
    """A trained sparse delta "a" and a random one "b" (values drawn, std 0.05) on one model."""
    run = trained(Case(family, dict(method="sparse_delta", scorer="magnitude", density=0.05)))
    model = copy.deepcopy(run.model)
    model.add_adapter("b", spadapt.AdapterConfig(method="sparse_delta", density=0.05,
                                                 scorer="random", seed=3))
    with torch.no_grad():
        for _, module in model.adapter_modules("b"):
            if isinstance(module, SparseDelta):
                module.values.normal_(std=0.05)
    return model


def test_mixed_sparse_delta_batch_trains_each_adapter_like_separate_runs() -> None:
    """Each group of routed rows runs through its own adapter: the same outputs with and
    without autograd, and each adapter's gradient is the one its own rows give it alone."""
    model = _two_sparse_deltas("bert")
    batch = make_batch("bert", rows=4, seed=5)
    routes = ["a", "b", "b", "a"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    values = {name: [m.values for _, m in model.adapter_modules(name)
                     if isinstance(m, SparseDelta)] for name in ("a", "b")}
    for tensors in values.values():
        for tensor in tensors:
            tensor.requires_grad_(True)
    logits = model(**inputs, adapter_names=routes).logits
    torch.testing.assert_close(logits, output_of(model, batch, adapter_names=routes),
                               rtol=1e-5, atol=1e-6)
    mixed = torch.autograd.grad(logits.sum(), values["a"] + values["b"])
    alone = []
    for name in ("a", "b"):
        rows = [i for i, route in enumerate(routes) if route == name]
        model.set_adapter(name)
        for tensor in values["a"] + values["b"]:
            tensor.requires_grad_(True)
        out = model(**{k: v[rows] for k, v in inputs.items()}).logits
        alone += torch.autograd.grad(out.sum(), values[name])
    for got, want in zip(mixed, alone, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_generate_with_beams_routes_each_beam() -> None:
    run = trained(Case("llama", dict(method="bottleneck", placement="pfeiffer", scorer="snip",
                                     density=0.2)))
    batch = make_batch("llama", rows=2, length=5, seed=11)
    kwargs = dict(max_new_tokens=3, do_sample=False, num_beams=2, pad_token_id=0,
                  input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    routed = run.model.generate(adapter_names=["__base__", "a"], **kwargs)
    base = run.pristine.generate(**kwargs)
    adapted = run.model.generate(**kwargs)
    assert torch.equal(routed[0], base[0]) and torch.equal(routed[1], adapted[1])


@pytest.mark.parametrize("layer_type", ["linear", "conv1d"])
def test_sparse_gradient_under_bf16_autocast_matches_fp32(layer_type: str) -> None:
    """The forward under bf16 autocast, backward outside it (as PyTorch recommends): fp32
    gradients as close to the fp32 run's as dense autograd under the same autocast gets."""
    layer, delta = _layer_with_random_delta(layer_type, 0.3, seed=0)
    layer.requires_grad_(False)
    weight = canonical_weight(layer)
    x = torch.randn(3, 7, 24)
    target = torch.randn(3, 7, 40)

    def gradients(sparse: bool, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = x.clone().requires_grad_(True)
        values = delta.values if sparse else delta.values.detach().clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if sparse:
                out = delta.linear(inputs, layer)
            else:
                dense = torch.zeros(weight.numel()).index_put((delta.indices,), values)
                out = F.linear(inputs, weight + dense.view(weight.shape), layer.bias)
        assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)
        loss = ((out.float() - target) ** 2).sum()
        return torch.autograd.grad(loss, [inputs, values])

    exact = gradients(sparse=False, bf16=False)
    ours = gradients(sparse=True, bf16=True)
    dense = gradients(sparse=False, bf16=True)
    for got, reference, want in zip(ours, dense, exact, strict=True):
        assert got.dtype == torch.float32
        error = (got - want).norm() / want.norm()
        assert error < 0.02 and error <= 1.5 * (reference - want).norm() / want.norm()


@pytest.mark.parametrize("layer_type", ["linear", "conv1d"])
def test_decoding_adds_the_sparse_product_and_larger_calls_form_w_plus_delta(
        layer_type: str, monkeypatch) -> None:
    """Without autograd, a call of at most SPARSE_PRODUCT_MAX_TOKENS tokens adds x Δᵀ to the
    layer's output (no W + Δ formed); a larger one forms W + Δ; both equal the dense sum."""
    layer, delta = _layer_with_random_delta(layer_type, 0.1, seed=2)
    layer.requires_grad_(False)
    dense = canonical_weight(layer) + delta.delta_dense()
    formed = []
    apply = SparseDeltaLinear.apply
    monkeypatch.setattr(SparseDeltaLinear, "apply",
                        lambda *args: formed.append(True) or apply(*args))
    for tokens, forms in ((1, False), (SPARSE_PRODUCT_MAX_TOKENS, False),
                          (SPARSE_PRODUCT_MAX_TOKENS + 1, True)):
        formed.clear()
        x = torch.randn(tokens, 1, 24)
        with torch.no_grad():
            got = delta.linear(x, layer)
        torch.testing.assert_close(got, F.linear(x, dense, layer.bias), rtol=1e-5, atol=1e-5)
        assert bool(formed) == forms, tokens
    x = torch.randn(2, 3, 24, requires_grad=True)  # with autograd: always the Function
    formed.clear()
    delta.linear(x, layer)
    assert formed


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("length", [1, 3])
def test_a_mixed_decoding_batch_equals_each_adapter_alone(monkeypatch, stacked: bool,
                                                          length: int) -> None:
    """stacked: the groups' deltas in one product (StackedDeltas); otherwise one sparse
    product per group (above STACKED_PRODUCT_MAX_PAIRS)."""
    if not stacked:
        monkeypatch.setattr(sparse_delta, "STACKED_PRODUCT_MAX_PAIRS", 0)
    calls = []
    product = sparse_delta.StackedDeltas.product
    monkeypatch.setattr(sparse_delta.StackedDeltas, "product",
                        lambda self, x: calls.append(True) or product(self, x))
    model = _two_sparse_deltas("llama")
    ids = make_batch("llama", rows=4, length=length, seed=6)["input_ids"]
    routes = ["a", "__base__", "b", "a"]
    with torch.no_grad():
        mixed = model(input_ids=ids, adapter_names=routes).logits
        for row, name in enumerate(routes):
            alone = model(input_ids=ids[row : row + 1], adapter_names=[name]).logits
            torch.testing.assert_close(mixed[row : row + 1], alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(mixed[0], mixed[2])
    sites = [m for m in model.modules() if isinstance(m, sparse_delta.SparseDeltaSite)]
    assert len(calls) == (len(sites) if stacked else 0)  # the mixed forward, at each site


@pytest.mark.parametrize("routes", [["a"], ["a", "b"]])
def test_decoding_under_bf16_autocast_matches_fp32(routes: list[str]) -> None:
    """A decoding step (one token a row: the CSR products, one adapter's or the stacked mixed
    batch's) under bf16 autocast runs, though CPU has no bf16 CSR product, and stays near
    the fp32 result."""
    model = _two_sparse_deltas("llama")
    ids = make_batch("llama", rows=len(routes), length=1, seed=6)["input_ids"]
    with torch.no_grad():
        fp32 = model(input_ids=ids, adapter_names=routes).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(input_ids=ids, adapter_names=routes).logits
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), fp32, rtol=0.05, atol=0.05)


def test_stacked_deltas_follow_changed_values_and_positions() -> None:
    """A mixed decoding step after an in-place update of the values, or after new positions,
    uses the new deltas, not the stacked copy of the old ones."""
    model = _two_sparse_deltas("llama")
    ids = make_batch("llama", rows=2, length=1, seed=6)["input_ids"]
    routes = ["a", "b"]

    def mixed_equals_alone() -> torch.Tensor:
        with torch.no_grad():
            mixed = model(input_ids=ids, adapter_names=routes).logits
            for row, name in enumerate(routes):
                alone = model(input_ids=ids[row : row + 1], adapter_names=[name]).logits
                torch.testing.assert_close(mixed[row : row + 1], alone, rtol=1e-5, atol=1e-6)
        return mixed

    before = mixed_equals_alone()
    deltas = [m for _, m in model.adapter_modules("b") if isinstance(m, SparseDelta)]
    with torch.no_grad():
        for delta in deltas:
            delta.values.mul_(3.0)
    after_values = mixed_equals_alone()
    assert not torch.allclose(before[1], after_values[1])
    torch.testing.assert_close(before[0], after_values[0])
    for delta in deltas:  # new positions, the same values
        shifted = (delta.indices + 1) % (delta.shape[0] * delta.shape[1])
        values = delta.values.detach().clone()
        order = shifted.argsort()
        delta.set_positions(shifted[order])
        with torch.no_grad():
            delta.values.copy_(values[order])
    after_positions = mixed_equals_alone()
    assert not torch.allclose(after_values[1], after_positions[1])
