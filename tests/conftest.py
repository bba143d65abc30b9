"""Tiny random models built from configs, the method × placement × schedule matrix, and a
small training helper shared by the behaviour tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

import spadapt
from spadapt.masks import keep_pruned_at_zero

VOCAB = 61


def tiny_bert() -> torch.nn.Module:
    torch.manual_seed(1)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=48, num_labels=3,
                        max_position_embeddings=32)
    return BertForSequenceClassification(config).eval()


def tiny_llama() -> torch.nn.Module:
    torch.manual_seed(2)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)
    return LlamaForCausalLM(config).eval()


def tiny_gpt2() -> torch.nn.Module:
    torch.manual_seed(3)
    config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return GPT2LMHeadModel(config).eval()


MODELS = {"bert": tiny_bert, "llama": tiny_llama, "gpt2": tiny_gpt2}


def make_batch(family: str, rows: int = 4, length: int = 9, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (rows, length), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if family == "bert":
        batch["labels"] = torch.randint(0, 3, (rows,), generator=generator)
    else:
        batch["labels"] = ids.clone()
    return batch


def inputs_of(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "labels"}


def output_of(model, batch: dict, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs_of(batch), **kwargs).logits


@dataclass(frozen=True)
class Case:
    family: str
    config: dict

    @property
    def id(self) -> str:
        c = self.config
        parts = [self.family, c["method"]]
        if c["method"] == "bottleneck":
            parts.append(c.get("placement", "pfeiffer"))
        parts += [c.get("scorer", "random"), c.get("schedule", "init"), f"d{c.get('density', 1.0)}"]
        if c.get("budget") == "layer":
            parts.append("layer")
        if c.get("large_sparse"):
            parts.append("large")
        return "-".join(parts)

    def adapter_config(self, **overrides) -> spadapt.AdapterConfig:
        values = {"bottleneck": 8, "prune_start": 0.0, "prune_end": 0.5, "prune_every": 1,
                  "synflow_iterations": 5, **self.config, **overrides}
        return spadapt.AdapterConfig(**values)


def _matrix() -> list[Case]:
    cases = []
    for placement in ("pfeiffer", "houlsby", "parallel"):
        for scorer, schedule, density in [
            ("random", "init", 0.2), ("magnitude", "init", 0.2), ("snip", "init", 0.2),
            ("grasp", "init", 0.2), ("fisher", "init", 0.2), ("synflow", "init", 0.2),
            ("random", "init", 1.0),
            ("magnitude", "gradual", 0.2), ("random", "learned", 0.2),
            ("random", "movement", 0.2), ("random", "lottery", 0.2),
        ]:
            cases.append(Case("bert", dict(method="bottleneck", placement=placement,
                                           scorer=scorer, schedule=schedule, density=density)))
    for scorer, schedule, density in [("snip", "init", 0.2), ("random", "init", 1.0),
                                      ("random", "learned", 0.2)]:
        cases.append(Case("bert", dict(method="bottleneck", placement="post_ln", scorer=scorer,
                                       schedule=schedule, density=density)))
    cases.append(Case("bert", dict(method="bottleneck", scorer="snip", density=0.2,
                                   large_sparse=True)))
    cases.append(Case("bert", dict(method="bottleneck", scorer="snip", density=0.2,
                                   schedule="regrow", regrow_every=2, regrow_fraction=0.5)))
    cases.append(Case("bert", dict(method="bottleneck", scorer="magnitude", density=0.3,
                                   budget="layer")))
    for scorer in ("random", "magnitude", "snip", "grasp", "fisher"):
        cases.append(Case("bert", dict(method="sparse_delta", scorer=scorer, density=0.05)))
    cases.append(Case("bert", dict(method="sparse_delta", scorer="magnitude", density=0.1,
                                   budget="layer")))
    cases.append(Case("bert", dict(method="sparse_delta", scorer="magnitude", density=0.05,
                                   schedule="regrow", regrow_every=2, regrow_fraction=0.5)))
    cases.append(Case("bert", dict(method="sparse_delta", scorer="magnitude", density=0.05,
                                   schedule="lottery")))
    for family in ("llama", "gpt2"):
        for placement in ("pfeiffer", "houlsby", "parallel", "post_ln"):
            cases.append(Case(family, dict(method="bottleneck", placement=placement,
                                           scorer="snip", density=0.2)))
        cases.append(Case(family, dict(method="bottleneck", scorer="random", schedule="learned",
                                       density=0.25)))
        cases.append(Case(family, dict(method="sparse_delta", scorer="magnitude", density=0.05)))
        cases.append(Case(family, dict(method="sparse_delta", scorer="random", density=0.02)))
        cases.append(Case(family, dict(method="sparse_delta", scorer="fisher", density=0.02)))
        cases.append(Case(family, dict(method="sparse_delta", scorer="random", density=0.05,
                                       schedule="lottery")))
    return cases


MATRIX = _matrix()


def sparse_deltas(model: spadapt.AdaptedModel) -> dict:
    """The sparse deltas of adapter "default", by site name."""
    from spadapt.methods import SparseDelta

    return {w.site_name: m for w, m in model.adapter_modules("default")
            if isinstance(m, SparseDelta)}


def schedule_step(model: spadapt.AdaptedModel, optimizer, step: int, total: int) -> None:
    """One optimizer step on tiny BERT batch `step`, then the mask schedule's step."""
    model(**make_batch("bert", seed=step)).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.step_schedule(step, total)


def train_steps(model: spadapt.AdaptedModel, batch: dict, steps: int = 6,
                lr: float = 5e-2) -> None:
    """A few AdamW steps (weight decay on) with the mask schedule, then final masks."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=0.1)
    keep_pruned_at_zero(model, optimizer)
    model.train()
    for step in range(1, steps + 1):
        loss = model(**batch).loss
        regularization = model.regularization_loss()
        if regularization is not None:
            loss = loss + regularization
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.step_schedule(step, steps)
    model.finalize_masks()
    model.eval()


@dataclass
class Trained:
    case: Case
    pristine: torch.nn.Module  # an untouched copy of the base model
    model: spadapt.AdaptedModel  # trained adapter "a" (active)
    batch: dict


_TRAINED: dict[str, Trained] = {}


def trained(case: Case) -> Trained:
    """Adapter "a" for `case` attached to a fresh tiny model and trained: trained once per case,
    then a deep copy for each caller, so a test that changes it in place changes nobody else's."""
    if case.id not in _TRAINED:
        base = MODELS[case.family]()
        pristine = copy.deepcopy(base)
        batch = make_batch(case.family)
        model = spadapt.attach(base, case.adapter_config(), adapter_name="a",
                               calibration=[batch, make_batch(case.family, seed=1)])
        train_steps(model, batch)
        _TRAINED[case.id] = Trained(case, pristine, model, batch)
    return copy.deepcopy(_TRAINED[case.id])


@pytest.fixture(params=MATRIX, ids=lambda c: c.id)
def case(request) -> Case:
    return request.param
