"""Data-driven mask scorers against hand computations: the positions a sparse delta keeps are
the top-k of Fisher scores (squared per-example gradients, summed: the FISH mask) or of SNIP
scores (|g ⊙ W| per batch, summed) of the frozen base weights, on a tiny BERT and on GPT-2's
transposed Conv1D weights; `score_batches` bounds the batches read. A sparse delta's Fisher
scores come from one pass per padded batch and equal those of each row run alone."""

from __future__ import annotations

import copy

import pytest
import torch

import spadapt
from conftest import MODELS, make_batch, tiny_bert
from spadapt.masks import SCORERS, ScoreContext, topk_masks
from spadapt.masks.scorers.fisher import fisher_scores
from spadapt.masks.scorers.row_losses import row_losses
from spadapt.model import KEY_SEPARATOR


def test_fisher_scores_are_squared_gradients_summed_over_the_losses() -> None:
    torch.manual_seed(0)
    weight = torch.randn(3, 4, requires_grad=True)
    inputs = [torch.randn(4) for _ in range(5)]
    losses = lambda: (torch.tanh(weight @ x).sum() for x in inputs)  # noqa: E731
    scores = SCORERS["fisher"](ScoreContext(targets={"w": weight}, seed=0, density=0.5,
                                            budget="global", losses=losses))
    expected = torch.zeros(3, 4)
    for x in inputs:
        (grad,) = torch.autograd.grad(torch.tanh(weight @ x).sum(), [weight])
        expected += grad**2
    torch.testing.assert_close(scores["w"], expected)
    assert SCORERS["fisher"].needs_data and SCORERS["fisher"].per_example
    assert not any(SCORERS[name].per_example for name in SCORERS if name != "fisher")


def _hand_scores(base: torch.nn.Module, targets: dict[str, torch.Tensor], batches: list[dict],
                 scorer: str, rows: list[dict] | None = None) -> dict[str, torch.Tensor]:
    """fisher: Σ over every row of every batch (or over `rows`) of (∂ loss(row) / ∂W)²; snip:
    Σ over batches of |∂ loss(batch) / ∂W ⊙ W|; for each target weight W, in its layout."""
    for tensor in targets.values():
        tensor.requires_grad_(True)
    scores = {key: torch.zeros_like(t) for key, t in targets.items()}
    if rows is None:
        rows = [{k: v[r : r + 1] for k, v in batch.items()}
                for batch in batches for r in range(len(batch["labels"]))]
    for inputs in rows if scorer == "fisher" else batches:
        grads = torch.autograd.grad(base(**inputs).loss, list(targets.values()))
        for key, grad in zip(targets, grads, strict=True):
            scores[key] += grad**2 if scorer == "fisher" else (grad * targets[key]).abs()
    return scores


@pytest.mark.parametrize("scorer, family, budget", [
    ("fisher", "bert", "global"), ("fisher", "bert", "layer"), ("fisher", "gpt2", "global"),
    ("snip", "bert", "global"), ("snip", "gpt2", "layer")])
def test_sparse_delta_positions_are_the_top_scored_base_weights(scorer, family, budget) -> None:
    base = MODELS[family]()
    pristine = copy.deepcopy(base).eval()
    batches = [make_batch(family, rows=3, seed=s) for s in range(3)]
    config = spadapt.AdapterConfig(method="sparse_delta", scorer=scorer, density=0.05,
                                   budget=budget, score_batches=2)
    model = spadapt.attach(base, config, calibration=batches)
    sites = {w.site_name: m for w, m in model.adapter_modules("default")
             if hasattr(m, "indices")}
    weights = {site: pristine.get_submodule(site).weight for site in sites}
    transposed = {site: type(pristine.get_submodule(site)).__name__ == "Conv1D" for site in sites}
    hand = _hand_scores(pristine, {f"{s}{KEY_SEPARATOR}delta": w for s, w in weights.items()},
                        batches[:2], scorer)
    expected = topk_masks({k: v.t() if transposed[k.split(KEY_SEPARATOR)[0]] else v
                           for k, v in hand.items()}, 0.05, budget)
    kept = sum(int(mask.sum()) for mask in expected.values())
    assert kept == sum(m.indices.numel() for m in sites.values())  # the exact budget
    for site, module in sites.items():
        want = torch.nonzero(expected[f"{site}{KEY_SEPARATOR}delta"].flatten()).flatten()
        assert torch.equal(module.indices.sort().values, want), site


def test_score_batches_bounds_the_calibration_batches_read() -> None:
    batches = [make_batch("bert", rows=3, seed=s) for s in range(3)]
    positions = {}
    for given, score_batches in ((batches[:2], 4), (batches, 2), (batches, 3)):
        config = spadapt.AdapterConfig(method="sparse_delta", scorer="fisher", density=0.05,
                                       score_batches=score_batches)
        model = spadapt.attach(tiny_bert(), config, calibration=given)
        positions[len(given), score_batches] = torch.cat(
            [m.indices for _, m in model.adapter_modules("default") if hasattr(m, "indices")])
    assert torch.equal(positions[2, 4], positions[3, 2])  # the first 2 of 3 batches
    assert not torch.equal(positions[3, 2], positions[3, 3])


def test_fisher_needs_calibration_batches() -> None:
    with pytest.raises(spadapt.AdapterError, match="needs calibration batches"):
        spadapt.attach(tiny_bert(), spadapt.AdapterConfig(method="sparse_delta", scorer="fisher",
                                                          density=0.05))
    with pytest.raises(spadapt.ConfigError, match="score_batches"):
        spadapt.AdapterConfig(score_batches=0)


def _padded_batch(family: str, lengths: list[int], seed: int) -> dict:
    """Rows of the given lengths, right-padded with id 0; a causal LM's first two tokens of
    each row (its "prompt") and its padding are labelled -100."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(3, 61, (length,), generator=generator)
        mask[row, :length] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if family == "bert":
        batch["labels"] = torch.randint(0, 3, (len(lengths),), generator=generator)
    else:
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :2] = -100
        batch["labels"] = labels
    return batch


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_fisher_on_padded_batches_is_one_pass_per_batch_and_equals_rows_alone(
        family, monkeypatch) -> None:
    """A sparse delta's Fisher scores come from one forward per calibration batch, and equal
    Σ (∂ loss(row) / ∂W)² with each row run alone and unpadded."""
    captured = {}

    def capturing(ctx):
        captured.update(fisher_scores(ctx))
        return captured

    capturing.needs_data, capturing.per_example = True, True
    monkeypatch.setitem(SCORERS, "fisher", capturing)
    base = MODELS[family]()
    pristine = copy.deepcopy(base).eval()
    batches = [_padded_batch(family, [7, 4, 9], seed=0), _padded_batch(family, [5, 9], seed=1)]
    forwards = []
    embeddings = base.get_input_embeddings()
    embeddings.register_forward_hook(lambda *_: forwards.append(1))
    config = spadapt.AdapterConfig(method="sparse_delta", scorer="fisher", density=0.05,
                                   score_batches=2)
    model = spadapt.attach(base, config, calibration=batches)
    assert len(forwards) == len(batches)  # batched, not a pass per row
    sites = [w.site_name for w, m in model.adapter_modules("default") if hasattr(m, "indices")]
    weights = {f"{s}{KEY_SEPARATOR}delta": pristine.get_submodule(s).weight for s in sites}
    alone = [{k: v[r : r + 1, : int(b["attention_mask"][r].sum())] if v.dim() > 1 else
              v[r : r + 1] for k, v in b.items()} for b in batches
             for r in range(len(b["labels"]))]
    hand = _hand_scores(pristine, weights, [], "fisher", rows=alone)
    assert set(captured) == set(hand)
    for key in hand:
        torch.testing.assert_close(captured[key], hand[key], rtol=1e-4, atol=1e-7)


def test_fisher_runs_rows_one_at_a_time_for_a_head_without_a_known_row_loss() -> None:
    """A regression head (one output) is not a head `row_losses` knows: each row runs alone,
    and the scores still equal the hand computation."""
    base = tiny_bert()
    base.config.num_labels = 1
    base.classifier = torch.nn.Linear(32, 1)
    base.num_labels = 1
    pristine = copy.deepcopy(base).eval()
    batch = {**make_batch("bert", rows=3, seed=4)}
    batch["labels"] = torch.randn(3)
    assert row_losses(pristine(**batch), batch) is None
    forwards = []
    base.get_input_embeddings().register_forward_hook(lambda *_: forwards.append(1))
    model = spadapt.attach(base, spadapt.AdapterConfig(method="sparse_delta", scorer="fisher",
                                                       density=0.05, score_batches=1),
                           calibration=[batch])
    assert len(forwards) == 1 + 3  # the batch (to learn its loss is unknown), then each row
    sites = {w.site_name: m for w, m in model.adapter_modules("default") if hasattr(m, "indices")}
    hand = _hand_scores(pristine, {f"{s}{KEY_SEPARATOR}delta": pristine.get_submodule(s).weight
                                   for s in sites}, [batch], "fisher")
    expected = topk_masks(hand, 0.05, "global")
    for site, module in sites.items():
        want = torch.nonzero(expected[f"{site}{KEY_SEPARATOR}delta"].flatten()).flatten()
        assert torch.equal(module.indices.sort().values, want), site
