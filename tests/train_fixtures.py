"""Tiny classification data and models for the training-loop tests (MiniLM's tokenizer, a
2-layer random BERT with dropout off so that runs can be compared exactly)."""

from __future__ import annotations

import random

import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from spadapt.assets import resolve_model
from spadapt.data import Example
from spadapt.tasks import ClassificationTask

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "weak"]
FILLER = ["the", "film", "plot", "cast", "music", "ending"]


def examples(count: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        label = index % 2
        words = [rng.choice(POSITIVE if label else NEGATIVE) for _ in range(3)]
        words += [rng.choice(FILLER) for _ in range(3)]
        rng.shuffle(words)
        out.append(Example(" ".join(words), label))
    return out


def task(max_length: int = 16) -> ClassificationTask:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:minilm"),
                                              local_files_only=True)
    return ClassificationTask(tokenizer, ["neg", "pos"], max_length=max_length)


def base_model(vocab_size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=48, num_labels=2, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0))


def model_folder(folder):
    """The tiny BERT and MiniLM's tokenizer saved as a local model folder; returns it."""
    classification = task()
    base_model(classification.tokenizer.vocab_size).save_pretrained(folder)
    classification.tokenizer.save_pretrained(folder)
    return folder
