"""A tiny Llama with a word-level tokenizer (and a chat template) saved as a local model
folder, and prompt/response rows it can learn: for the generative PoC tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

COUNTRIES = {"france": "paris", "spain": "madrid", "italy": "rome", "japan": "tokyo",
             "kenya": "nairobi", "peru": "lima", "chile": "santiago", "egypt": "cairo",
             "india": "delhi", "china": "beijing", "cuba": "havana", "iran": "tehran"}
TEMPLATE = ("{% for m in messages %}< user > {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}< bot > {% endif %}")


def qa_rows() -> list[dict]:
    """Two questions per country: its capital (one word) and a sentence about it."""
    rows = []
    for country, city in COUNTRIES.items():
        rows.append({"prompt": f"what is the capital of {country} ?", "response": city})
        rows.append({"prompt": f"where is {city} ?", "response": f"{city} is in {country}"})
    return rows


def _vocabulary(extra: list[str]) -> list[str]:
    words = ["[PAD]", "[EOS]", "[UNK]", "<", ">", "user", "bot", "Question", "Answer", ":"]
    for row in qa_rows():
        words += row["prompt"].split() + row["response"].split()
    return list(dict.fromkeys(words + extra))


def model_folder(folder: Path, chat_template: bool = True, pad: bool = True,
                 extra_words: list[str] = ()) -> Path:
    """A tiny Llama (2 layers, width 32) and its tokenizer in `folder`."""
    words = _vocabulary(list(extra_words))
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"eos_token": "[EOS]", "unk_token": "[UNK]", **({"pad_token": "[PAD]"} if pad
                                                              else {})}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **special)
    if chat_template:
        tokenizer.chat_template = TEMPLATE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0 if pad else None, bos_token_id=None, eos_token_id=1))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
