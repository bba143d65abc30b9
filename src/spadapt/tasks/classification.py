"""Sequence classification: tokenized batches with labels, and accuracy / macro-F1 / confusion.

The base is `AutoModelForSequenceClassification` with a new head over the task's labels
(label names travel in `id2label`). A decoder classifies from its last token, which the model
finds by the pad token: a tokenizer without one (Llama, GPT-2) pads with its EOS token, and the
model's config is told so. Batches are padded per batch (dynamic padding) to at most
`max_length` tokens; prediction batches examples of similar length. Metrics come from
scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .common import device_of, quiet_transformers


@dataclass
class ClassificationTask:
    tokenizer: object  # a Hugging Face tokenizer
    labels: list[str]  # label names; index = class id
    max_length: int = 128  # tokens per example after truncation

    name = "classification"
    metric = "accuracy"  # the metric that selects the best checkpoint (higher is better)

    def __post_init__(self) -> None:
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer has neither a pad token nor an EOS token to "
                                 "pad with; set tokenizer.pad_token first")
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def load_base(self, path: str) -> nn.Module:
        from transformers import AutoModelForSequenceClassification

        with quiet_transformers():  # "newly initialized head" is expected, not news
            return AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=len(self.labels), local_files_only=True,
                ignore_mismatched_sizes=True,  # a saved head of another width is replaced
                id2label=dict(enumerate(self.labels)),
                label2id={name: i for i, name in enumerate(self.labels)},
                pad_token_id=self.tokenizer.pad_token_id,  # where a decoder's last token is
            )

    def collate(self, examples: Sequence) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer([e.text for e in examples], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        batch = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask",
                                                            "token_type_ids")}
        batch["labels"] = torch.tensor([e.label for e in examples], dtype=torch.long)
        return batch

    @torch.no_grad()
    def predict(self, model: nn.Module, examples: Sequence, batch_size: int = 64
                ) -> tuple[torch.Tensor, float]:
        """(probabilities (N, labels) in the order of `examples`, mean loss) in eval mode.
        Batches are formed from examples of similar length (less padding); each example's
        result does not depend on its batch."""
        if not examples:
            return torch.zeros(0, len(self.labels)), 0.0
        was_training = model.training
        model.eval()
        lengths = [len(ids) for ids in self.tokenizer(
            [e.text for e in examples], truncation=True, max_length=self.max_length)["input_ids"]]
        order = sorted(range(len(examples)), key=lambda i: lengths[i])
        probabilities, loss_sum, device = [], 0.0, device_of(model)
        for start in range(0, len(order), batch_size):
            batch = self.collate([examples[i] for i in order[start : start + batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            output = model(**batch)
            loss_sum += float(output.loss) * len(batch["labels"])
            probabilities.append(torch.softmax(output.logits.float(), dim=-1).cpu())
        model.train(was_training)
        by_length = torch.cat(probabilities)
        in_order = torch.empty_like(by_length)
        in_order[torch.tensor(order)] = by_length
        return in_order, loss_sum / max(1, len(examples))

    def evaluate(self, model: nn.Module, examples: Sequence, batch_size: int = 64) -> dict:
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

        probabilities, loss = self.predict(model, examples, batch_size)
        predicted = probabilities.argmax(dim=-1).tolist()
        truth = [e.label for e in examples]
        label_ids = list(range(len(self.labels)))
        return {
            "loss": loss,
            "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", labels=label_ids,
                                       zero_division=0)),
            "confusion_matrix": confusion_matrix(truth, predicted, labels=label_ids).tolist(),
        }
