"""The decoder cost benchmarks' instruments: live tensor bytes, the memory model against a
measured peak, the competitors under each lever, the generation benchmark's models, the
BENCHMARKS.md sections; and sparse_delta's backward outside bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from benchmarks import decoder_markdown
from benchmarks.common import resident_adapters
from benchmarks.decoder_step import COMPETITORS, NOT_ON_INT8, make, runs_under
from benchmarks.generation import SETTINGS
from benchmarks.memory_model import (
    MEASURED_LEVERS,
    Shape,
    census_kind,
    coefficients,
    predict,
    trained_values,
)
from benchmarks.tensor_memory import LiveTensorBytes
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

import spadapt
from spadapt.quantize import is_quantized
from spadapt.train.levers import quantize_base

pytest.importorskip("torchao")

# a Llama of other widths than the memory model's census model: the check is out of sample
SHAPE = Shape("test Llama", 3, 64, 176, 4, 2, 16, 3000, True)
ROWS, LENGTH = 4, 32


def llama(shape: Shape = SHAPE) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim, tie_word_embeddings=True))


def batch(vocab: int = SHAPE.vocab) -> dict:
    ids = torch.randint(0, vocab, (ROWS, LENGTH), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def trainee(name: str, lever: str, base: nn.Module):
    data = batch()
    return make(name, lever, base, [data, data])


def test_live_tensor_bytes_counts_weights_optimizer_state_and_int8_data() -> None:
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    weights = sum(p.numel() * 4 for p in model.parameters())
    with LiveTensorBytes(model.parameters()) as live:
        assert live.current == weights
        for _ in range(2):
            model(torch.randn(16, 64)).sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        after = live.current
    steps = 4 * len(list(model.parameters()))  # AdamW's step counter: one float per tensor
    assert after == weights + 2 * weights + steps  # the two moments; gradients freed
    assert live.peak >= after + weights  # the gradients were alive together once

    frozen = nn.Linear(256, 512)
    frozen.requires_grad_(False)
    quantize_base(frozen_model := nn.Sequential(frozen, nn.Linear(512, 2)), "int8")
    assert is_quantized(frozen_model[0].weight)
    with LiveTensorBytes([frozen_model[0].weight]) as live:
        held = live.current
    assert 512 * 256 <= held < 512 * 256 + 512 * 16  # int8 entries plus per-row scales


@pytest.mark.parametrize("lever", list(MEASURED_LEVERS))
def test_memory_model_predicts_a_measured_peak_within_15_percent(lever: str) -> None:
    base = llama()
    setting = MEASURED_LEVERS[lever]
    for name in runs_under(lever):
        made = trainee(name, lever, base)
        resident = [*made.model.parameters(), *made.model.buffers()]
        with LiveTensorBytes(resident) as live:
            del resident
            for _ in range(2):
                made.step(batch())
        predicted = predict(SHAPE, name, setting, coefficients(name, census_kind(setting)),
                            ROWS, LENGTH)
        assert predicted["total"] == pytest.approx(live.peak, rel=0.15), (lever, name)


def test_trained_values_match_the_built_competitors() -> None:
    base = llama()
    for name in COMPETITORS:
        made = trainee(name, "fp32", base)
        if name == "sparse_delta":
            counted = made.model.parameter_report()["nonzero"]
            assert abs(counted - trained_values(SHAPE, name)) <= SHAPE.layers * 7
        else:
            counted = sum(p.numel() for p in made.model.parameters() if p.requires_grad)
            assert counted == trained_values(SHAPE, name), name


@pytest.mark.parametrize("lever", ["fp32", "bf16", "checkpointing", "int8"])
def test_every_competitor_trains_only_its_values_under_each_lever(lever: str) -> None:
    base = llama()
    for name in runs_under(lever):
        made = trainee(name, lever, base)
        frozen = {n: p.detach().clone() for n, p in made.model.named_parameters()
                  if not p.requires_grad and not is_quantized(p)}
        loss = made.step(batch())
        assert torch.isfinite(torch.tensor(loss)), (lever, name)
        assert (made.optimizer is None) == (name == "floor")
        for n, p in made.model.named_parameters():
            if n in frozen:
                assert torch.equal(p, frozen[n]), (lever, name, n)
        if lever == "int8":
            assert any(is_quantized(m.weight) for m in made.model.modules()
                       if isinstance(m, nn.Linear))
    assert set(COMPETITORS) - set(runs_under("int8")) == set(NOT_ON_INT8)


def test_floor_carries_gradients_to_the_input_embeddings() -> None:
    made = trainee("floor", "fp32", llama())
    seen = []

    def watch(module, args, output) -> None:
        output.register_hook(seen.append)

    made.model.get_input_embeddings().register_forward_hook(watch)
    made.step(batch())
    assert seen and seen[0].abs().sum() > 0


def test_sparse_delta_backward_outside_bf16_autocast_matches_fp32() -> None:
    gradients = {}
    for precision in ("fp32", "bf16"):
        model = spadapt.attach(llama(), spadapt.AdapterConfig(method="sparse_delta",
                                                              density=0.05, scorer="magnitude"))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch()).loss
        loss.backward()  # outside autocast, as PyTorch recommends
        gradients[precision] = torch.cat([p.grad.flatten() for p in model.parameters()
                                          if p.requires_grad])
        assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    cosine = torch.nn.functional.cosine_similarity(gradients["fp32"], gradients["bf16"], dim=0)
    assert cosine > 0.99


def test_generation_models_hold_eight_adapters_that_route_per_row() -> None:
    base = llama(Shape("t", 2, 32, 48, 4, 2, 8, 100, True)).eval()
    ids = torch.randint(0, 100, (8, 6), generator=torch.Generator().manual_seed(1))
    for method in ("sparse_delta", "sparse"):
        model = resident_adapters(base, SETTINGS[method], 8)
        assert model.adapter_names == [f"a{i}" for i in range(8)]
        with torch.inference_mode():
            mixed = model(input_ids=ids, adapter_names=[f"a{i}" for i in range(8)]).logits
            for row in range(8):
                alone = model(input_ids=ids[row : row + 1],
                              adapter_names=[f"a{row}"]).logits
                torch.testing.assert_close(mixed[row : row + 1], alone, rtol=1e-4, atol=1e-5)
        with torch.inference_mode():  # the adapters differ from one another
            first = model(input_ids=ids, adapter_names=["a0"] * 8).logits
            second = model(input_ids=ids, adapter_names=["a1"] * 8).logits
        assert not torch.allclose(first, second)


def _step_entry(seconds: float, floor: float, lora: float, peak: int) -> dict:
    def summary(value: float) -> dict:
        return {"median": value, "min": value, "max": value}

    return {"trainable_parameters": 10, "step_seconds": summary(seconds),
            "ratio_to_floor": summary(seconds / floor), "ratio_to_lora": summary(seconds / lora),
            "memory": {"tensor_peak_bytes": peak, "rss_peak_bytes": 2 * peak}}


def test_step_section_judges_the_decoder_targets() -> None:
    fp32 = {"floor": _step_entry(10, 10, 14, 100), "lora": _step_entry(14, 10, 14, 120),
            "sparse_delta": _step_entry(11, 10, 14, 110)}
    int8 = {"floor": _step_entry(10, 10, 14, 60), "lora": _step_entry(14, 10, 14, 80),
            "sparse_delta": _step_entry(11, 10, 14, 40)}
    lines = decoder_markdown.step_targets({"fp32": fp32, "int8": int8})
    text = "\n".join(lines)
    assert "sparse_delta step 1.10 × the floor (bar ≤ 1.25): **met**" in text
    assert "0.79 × PEFT LoRA's (bar ≤ 0.8): **met**" in text
    assert "int8 base, sparse_delta: tensor peak 0.36 × the fp32 base's (bar ≤ 0.45): **met**" \
        in text
    assert "int8 base, lora: tensor peak 0.67 × the fp32 base's (bar ≤ 0.45): **missed**" in text
