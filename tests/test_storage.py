"""The adapter directory: what is written, and the clear errors for corrupted, truncated,
hand-edited or mismatched files — never a crash inside torch, never a half-loaded model."""

from __future__ import annotations

import copy
import hashlib
import json
import struct

import pytest
import safetensors.torch
import torch

import spadapt
from conftest import Case, make_batch, output_of, tiny_bert, train_steps, trained
from spadapt.storage import MANIFEST_FILE, WEIGHTS_FILE, AdapterFileError

SNIP = Case("bert", dict(method="bottleneck", scorer="snip", density=0.2))
RANDOM = Case("bert", dict(method="bottleneck", scorer="random", density=0.2))
DELTA = Case("bert", dict(method="sparse_delta", scorer="magnitude", density=0.05))


def _saved(case: Case, tmp_path, **kwargs):
    run = trained(case)
    path = run.model.save_adapter(tmp_path / "adapter", adapter_name="a", **kwargs)
    return run, path


def _structure(model) -> list:
    return [(n, type(m).__name__) for n, m in model.named_modules()]


def _rewrite(path, name: str, data: bytes) -> None:
    """Replace a file and update the manifest's checksum, as a careful hand-editor would."""
    (path / name).write_bytes(data)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_directory_holds_only_values_and_encoded_positions(tmp_path) -> None:
    run, path = _saved(SNIP, tmp_path)
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["adapter_config.json", WEIGHTS_FILE, MANIFEST_FILE])
    tensors = safetensors.torch.load_file(path / WEIGHTS_FILE)
    assert set(tensors) == {"values", "positions"}
    assert tensors["positions"].dtype == torch.uint8
    report = run.model.parameter_report("a")
    assert tensors["values"].numel() == report["nonzero"]
    assert (path / WEIGHTS_FILE).stat().st_size == report["adapter_bytes"]
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    assert manifest["nnz"] == report["nonzero"]
    assert manifest["base_model"]["model_type"] == "bert"
    encodings = {e["encoding"] for e in manifest["tensors"].values()}
    assert encodings <= {"dense", "bitmask", "elias_fano", "empty", "full"}
    assert encodings & {"bitmask", "elias_fano"}


def test_random_masks_store_only_a_seed(tmp_path) -> None:
    _, path = _saved(RANDOM, tmp_path)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    sparse = [e for e in manifest["tensors"].values() if e["encoding"] != "dense"]
    assert sparse and all(e["encoding"] == "seeded" for e in sparse)
    assert safetensors.torch.load_file(path / WEIGHTS_FILE)["positions"].numel() == 0


def test_seeded_mask_that_cannot_be_rebuilt_is_refused(tmp_path) -> None:
    run, path = _saved(RANDOM, tmp_path)
    config = json.loads((path / "adapter_config.json").read_text())
    config["config"]["seed"] = 12345  # a different seed rebuilds a different mask
    _rewrite(path, "adapter_config.json", json.dumps(config).encode())
    model = spadapt.AdaptedModel(copy.deepcopy(run.pristine))
    before = _structure(model)
    with pytest.raises(AdapterFileError, match="could not be rebuilt"):
        model.load_adapter(path)
    assert _structure(model) == before and model.adapter_names == []


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_values(tmp_path, dtype: str) -> None:
    run, path = _saved(SNIP, tmp_path, save_dtype=dtype)
    full = run.model.save_adapter(tmp_path / "full", adapter_name="a")
    assert (path / WEIGHTS_FILE).stat().st_size < (full / WEIGHTS_FILE).stat().st_size
    loaded = spadapt.load_adapter(copy.deepcopy(run.pristine), path).eval()
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    assert manifest["value_dtype"] == dtype
    tolerance = 1e-3 if dtype == "float16" else 1e-2  # 11 vs 8 significant bits
    torch.testing.assert_close(output_of(loaded, run.batch), output_of(run.model, run.batch),
                               rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("how", ["flip", "truncate", "append"])
def test_corrupted_or_truncated_weights_are_refused(tmp_path, how: str) -> None:
    run, path = _saved(SNIP, tmp_path)
    data = bytearray((path / WEIGHTS_FILE).read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
    elif how == "truncate":
        data = data[: len(data) - 17]
    else:
        data += b"\0"
    (path / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(AdapterFileError, match=WEIGHTS_FILE):
        spadapt.load_adapter(copy.deepcopy(run.pristine), path)


def test_hand_edited_config_is_refused(tmp_path) -> None:
    run, path = _saved(SNIP, tmp_path)
    text = (path / "adapter_config.json").read_text().replace('"density": 0.2', '"density": 0.3')
    (path / "adapter_config.json").write_text(text)
    with pytest.raises(AdapterFileError, match="adapter_config.json.*sha256"):
        spadapt.load_adapter(copy.deepcopy(run.pristine), path)


@pytest.mark.parametrize("missing", ["manifest.json", "adapter_config.json", WEIGHTS_FILE])
def test_missing_file_is_named(tmp_path, missing: str) -> None:
    run, path = _saved(SNIP, tmp_path)
    (path / missing).unlink()
    with pytest.raises(AdapterFileError, match=f"{missing}.*missing"):
        spadapt.load_adapter(copy.deepcopy(run.pristine), path)


def test_not_a_directory(tmp_path) -> None:
    with pytest.raises(AdapterFileError, match="not a directory"):
        spadapt.load_adapter(tiny_bert(), tmp_path / "nothing-here")


def test_mismatched_base_model_is_refused(tmp_path) -> None:
    _, path = _saved(SNIP, tmp_path)
    other = tiny_bert()
    with torch.no_grad():
        other.bert.encoder.layer[0].output.dense.weight[0, 0] += 1e-3
    with pytest.raises(AdapterFileError, match="different base model: its weight values differ"):
        spadapt.load_adapter(other, path)
    from transformers import BertConfig, BertForSequenceClassification

    wider = BertForSequenceClassification(BertConfig(
        vocab_size=61, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=48, num_labels=3, max_position_embeddings=32))
    with pytest.raises(AdapterFileError, match="model config.*parameter names, shapes"):
        spadapt.load_adapter(wider, path)


def test_new_head_does_not_change_the_fingerprint(tmp_path) -> None:
    """A classification head is re-initialised on every from_pretrained; the adapter carries it."""
    run, path = _saved(SNIP, tmp_path)
    base = copy.deepcopy(run.pristine)
    torch.nn.init.normal_(base.classifier.weight)
    loaded = spadapt.load_adapter(base, path).eval()
    assert torch.equal(output_of(loaded, run.batch), output_of(run.model, run.batch))


def _edit_safetensors(path, edit) -> None:
    data = (path / WEIGHTS_FILE).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    tensors = safetensors.torch.load(data)
    metadata = header["__metadata__"]
    edit(tensors, metadata)
    _rewrite(path, WEIGHTS_FILE, safetensors.torch.save(tensors, metadata=metadata))


@pytest.mark.parametrize("damage", ["positions", "layout", "values"])
def test_inconsistent_payload_with_valid_checksums_is_refused(tmp_path, damage: str) -> None:
    run, path = _saved(SNIP, tmp_path)

    def edit(tensors, metadata):
        if damage == "positions":
            tensors["positions"] = tensors["positions"][:-3].clone()
        elif damage == "layout":
            layout = json.loads(metadata["layout"])
            layout[0][2] += 1  # claims one more value than stored
            metadata["layout"] = json.dumps(layout)
        else:
            tensors["values"] = tensors["values"][:-1].clone()

    _edit_safetensors(path, edit)
    model = spadapt.AdaptedModel(copy.deepcopy(run.pristine))
    with pytest.raises(AdapterFileError):
        model.load_adapter(path)
    assert model.adapter_names == []


def test_failed_load_leaves_the_model_unchanged(tmp_path) -> None:
    """A config that passes every check but builds different shapes is rolled back."""
    run, path = _saved(SNIP, tmp_path)
    config = json.loads((path / "adapter_config.json").read_text())
    config["config"]["bottleneck"] = 16
    _rewrite(path, "adapter_config.json", json.dumps(config).encode())
    model = copy.deepcopy(run.model)
    before_structure, before_state = _structure(model), copy.deepcopy(model.state_dict())
    before_output = output_of(model, run.batch)
    with pytest.raises(AdapterFileError, match="shape"):
        model.load_adapter(path, adapter_name="other")
    assert _structure(model) == before_structure
    assert model.adapter_names == ["a"]
    after = model.state_dict()
    assert all(torch.equal(before_state[k], after[k]) for k in before_state)
    assert torch.equal(output_of(model, run.batch), before_output)


def test_writes_are_atomic_and_refuse_foreign_directories(tmp_path) -> None:
    run, path = _saved(SNIP, tmp_path)
    first = (path / WEIGHTS_FILE).read_bytes()
    model = copy.deepcopy(run.model)
    train_steps(model, make_batch("bert", seed=5), steps=2)
    model.save_adapter(path, adapter_name="a")  # replaces the old adapter
    assert (path / WEIGHTS_FILE).read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temp dirs left
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(AdapterFileError, match="not an adapter directory"):
        model.save_adapter(foreign, adapter_name="a")
    assert (foreign / "cat.jpg").read_bytes() == b"meow"


def test_unfinished_masks_are_not_saved(tmp_path) -> None:
    base = tiny_bert()
    model = spadapt.attach(base, Case("bert", dict(method="bottleneck", schedule="learned",
                                                     density=0.2)).adapter_config())
    with pytest.raises(spadapt.AdapterError, match="finalize_masks"):
        model.save_adapter(tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_sparse_delta_round_trip_after_merge(tmp_path) -> None:
    run = trained(DELTA)
    model = copy.deepcopy(run.model)
    merged_output = output_of(model, run.batch)
    model.merge_adapter("a")
    with pytest.raises(spadapt.AdapterError, match="unmerge"):
        model.fingerprint(["never-seen-before"])
    model.unmerge_adapter()
    path = model.save_adapter(tmp_path / "delta", adapter_name="a")
    loaded = spadapt.load_adapter(copy.deepcopy(run.pristine), path).eval()
    assert torch.equal(output_of(loaded, run.batch), merged_output)
