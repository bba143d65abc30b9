"""What an adapter directory records about its task, and where an adapter may be saved.

An adapter saved through the Python API (no `labels` in its config) records the task and the
class names of the base's head, so the server, `inspect`, `eval`, `predict` and the registry
all take it for the classifier it is; directories of format version 1 still load; saving
into an existing empty directory works, into a non-empty foreign one is refused."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel
from typer.testing import CliRunner

import spadapt
from conftest import make_batch, output_of, tiny_bert, tiny_llama
from spadapt.assets import resolve_model
from spadapt.cli import app
from spadapt.registry import Registry
from spadapt.serve import ServeConfig, create_app
from spadapt.storage import CONFIG_FILE, MANIFEST_FILE, AdapterTask, read_adapter_task

LABELS = ["billing", "delivery", "other"]
runner = CliRunner()


@pytest.fixture(scope="module")
def api_classifier(tmp_path_factory):
    """(base folder, adapter dir): the README's Python API, a tiny BERT whose config names its
    classes, an adapter saved without `labels`."""
    root = tmp_path_factory.mktemp("api")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:minilm"))
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=3,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}))
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    model = spadapt.attach(base.eval(), spadapt.AdapterConfig(bottleneck=8, density=0.5))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.3)
    return root / "base", model.save_adapter(root / "adapter", base_model=str(root / "base"))


def test_save_records_the_task_and_class_names_of_the_base_head(api_classifier) -> None:
    _, adapter = api_classifier
    assert read_adapter_task(adapter) == AdapterTask("classification", LABELS, 3)
    saved = json.loads((adapter / CONFIG_FILE).read_text())
    assert (saved["format_version"], saved["task"], saved["head_width"]) == (2, "classification",
                                                                              3)
    assert saved["config"]["labels"] == LABELS


def test_the_task_of_a_causal_lm_and_of_a_bare_encoder(tmp_path) -> None:
    lm = spadapt.attach(tiny_llama(), spadapt.AdapterConfig(method="sparse_delta", density=0.05))
    assert read_adapter_task(lm.save_adapter(tmp_path / "lm")) == AdapterTask("causal_lm")
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=61, hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=48))
    bare = spadapt.attach(encoder, spadapt.AdapterConfig(bottleneck=4))
    assert read_adapter_task(bare.save_adapter(tmp_path / "bare")) == AdapterTask("adapter")


def test_the_server_classifies_with_an_adapter_saved_through_the_api(api_classifier) -> None:
    base, adapter = api_classifier
    texts = ["my invoice is wrong", "where is my parcel"]
    with TestClient(create_app(ServeConfig(model=str(base), adapters={"tickets": str(adapter)}))
                    ) as client:
        response = client.post("/v1/classify", json={"adapter": "tickets", "texts": texts})
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == LABELS
    predicted = runner.invoke(app, ["predict", "--adapter", str(adapter), "--text", texts[0],
                                    "--text", texts[1]])
    assert predicted.exit_code == 0, predicted.output
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    for served, offline in zip(response.json()["results"], rows, strict=True):
        assert served["label"] == offline["label"]
        for label in LABELS:
            assert served["probabilities"][label] == pytest.approx(
                offline["probabilities"][label], abs=1e-5)


def test_inspect_eval_and_the_registry_show_the_same_task(api_classifier, tmp_path) -> None:
    _, adapter = api_classifier
    shown = runner.invoke(app, ["inspect", str(adapter)])
    assert shown.exit_code == 0, shown.output
    assert "task: classification (labels: billing, delivery, other)" in shown.stdout
    data = tmp_path / "holdout.csv"
    data.write_text("text,label\nmy invoice is wrong,billing\nwhere is my parcel,delivery\n")
    evaluated = runner.invoke(app, ["eval", "--adapter", str(adapter), "--data", str(data)])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert metrics["labels"] == LABELS and 0 <= metrics["accuracy"] <= 1
    entry = Registry(tmp_path / "registry").push(adapter, "tickets")
    assert (entry.task, entry.labels) == ("classification", LABELS)


def _as_format_version_1(directory) -> None:
    """Rewrite a directory as version 1 wrote it: no task or head width, version 1."""
    saved = json.loads((directory / CONFIG_FILE).read_text())
    for key in ("task", "head_width"):
        del saved[key]
    saved["format_version"] = 1
    data = json.dumps(saved, indent=2, sort_keys=True).encode()
    (directory / CONFIG_FILE).write_bytes(data)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["format_version"] = 1
    manifest["files"][CONFIG_FILE] = {"sha256": hashlib.sha256(data).hexdigest(),
                                      "bytes": len(data)}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def test_a_format_version_1_directory_still_loads(tmp_path) -> None:
    batch = make_batch("bert")
    pristine = tiny_bert()
    config = spadapt.AdapterConfig(bottleneck=8, density=0.25, labels=["a", "b", "c"])
    model = spadapt.attach(copy.deepcopy(pristine), config)
    path = model.save_adapter(tmp_path / "old")
    _as_format_version_1(path)
    assert read_adapter_task(path) == AdapterTask("classification", ["a", "b", "c"], 3)
    loaded = spadapt.load_adapter(copy.deepcopy(pristine), path).eval()
    assert torch.equal(output_of(loaded, batch), output_of(model.eval(), batch))
    lm = spadapt.attach(tiny_llama(), spadapt.AdapterConfig(method="sparse_delta", density=0.05))
    _as_format_version_1(lm.save_adapter(tmp_path / "old-lm"))
    assert read_adapter_task(tmp_path / "old-lm") == AdapterTask("causal_lm")


def test_save_into_an_existing_empty_directory(tmp_path) -> None:
    model = spadapt.attach(tiny_bert(), spadapt.AdapterConfig(bottleneck=4))
    (tmp_path / "out").mkdir()
    path = model.save_adapter(tmp_path / "out")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [CONFIG_FILE, "adapter.safetensors", MANIFEST_FILE])
    batch = make_batch("bert")
    loaded = spadapt.load_adapter(tiny_bert(), path).eval()
    assert torch.equal(output_of(loaded, batch), output_of(model.eval(), batch))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(spadapt.AdapterFileError, match="exists and is not an adapter directory"):
        model.save_adapter(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_labels_that_do_not_match_the_head_are_refused_at_save(tmp_path) -> None:
    config = spadapt.AdapterConfig(bottleneck=4, labels=["neg", "pos"])  # the head has 3
    model = spadapt.attach(tiny_bert(), config)
    with pytest.raises(spadapt.AdapterError, match="names 2 labels .* has 3 outputs"):
        model.save_adapter(tmp_path / "out")
    assert not (tmp_path / "out").exists()
