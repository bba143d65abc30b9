"""Schedule "regrow" (SpIEL-style): a sparse delta drops its positions of smallest |Δ| and
regrows as many where the frozen weight's gradient is largest, with an exact budget at every
step, inside its weights, values and Adam moments following their positions."""

from __future__ import annotations

import copy

import pytest
import torch

import spadapt
from conftest import make_batch, schedule_step, sparse_deltas, tiny_bert
from spadapt.masks import keep_pruned_at_zero


def _regrowing(**overrides) -> spadapt.AdaptedModel:
    values = dict(method="sparse_delta", scorer="magnitude", density=0.05, schedule="regrow",
                  regrow_every=2, regrow_fraction=0.5, prune_end=1.0, **overrides)
    return spadapt.attach(tiny_bert(), spadapt.AdapterConfig(**values))


def _optimizer(model) -> torch.optim.AdamW:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                             weight_decay=0.0)


def test_budget_is_exact_and_inside_the_weights_at_every_step() -> None:
    model = _regrowing()
    optimizer = _optimizer(model)
    keep_pruned_at_zero(model, optimizer)
    deltas = sparse_deltas(model)
    counts = {site: d.indices.numel() for site, d in deltas.items()}
    first = {site: d.indices.clone() for site, d in deltas.items()}
    model.train()
    model.resume_schedule(0, 8)
    for step in range(1, 9):
        schedule_step(model, optimizer, step, 8)
        for site, delta in deltas.items():
            size = delta.shape[0] * delta.shape[1]
            assert delta.indices.numel() == delta.values.numel() == counts[site]
            assert bool((delta.indices.diff() > 0).all()) and 0 <= int(delta.indices.min())
            assert int(delta.indices.max()) < size
            assert int(delta.crow[-1]) == counts[site]
            assert torch.equal(delta.cols, delta.indices % delta.shape[1])
    moved = sum(int((~torch.isin(d.indices, first[s])).sum()) for s, d in deltas.items())
    assert moved > 0
    assert all(d.probe is None for d in deltas.values())  # step 8 = prune_end: none armed


def test_a_regrowth_drops_the_smallest_values_and_regrows_at_the_largest_gradients() -> None:
    model = _regrowing()
    optimizer = _optimizer(model)
    keep_pruned_at_zero(model, optimizer)
    model.eval()  # no dropout: the hand computations below see the same function
    schedule_step(model, optimizer, 1, 4)  # arms every delta for step 2
    deltas = sparse_deltas(model)
    counts = {site: d.probe.count for site, d in deltas.items()}
    assert all(c == round(0.5 * 0.5 * d.values.numel()) for c, d in
               zip(counts.values(), deltas.values(), strict=True))
    batch = make_batch("bert", seed=2)

    # by hand, on copies: the weight's gradient at step 2 (deltas added), and step 2 taken
    # by a plain AdamW without any regrowth
    probe_copy = copy.deepcopy(model)
    for delta in sparse_deltas(probe_copy).values():
        delta.arm_regrow(0)
    layers = {site: probe_copy.base_model.get_submodule(site).base_layer for site in deltas}
    for layer in layers.values():
        layer.weight.requires_grad_(True)
    probe_copy(**batch).loss.backward()
    gradients = {site: layer.weight.grad.abs().flatten() for site, layer in layers.items()}
    plain = copy.deepcopy(model)
    for delta in sparse_deltas(plain).values():
        delta.arm_regrow(0)
    plain_optimizer = _optimizer(plain)
    plain_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # not shared
    plain(**batch).loss.backward()
    plain_optimizer.step()

    model(**batch).loss.backward()
    optimizer.step()  # the regrowth happens in the optimizer's post-step hook
    for site, delta in deltas.items():
        old, count = sparse_deltas(plain)[site], counts[site]
        updated = old.values.detach()
        state = plain_optimizer.state[old.values]
        dropped = torch.sort(updated.abs(), stable=True).indices[:count]
        kept = torch.ones(updated.numel(), dtype=torch.bool)
        kept[dropped] = False
        scores = gradients[site].clone()
        scores[old.indices] = -1
        regrown = torch.topk(scores, count).indices
        want = torch.cat([old.indices[kept], regrown]).sort()
        assert torch.equal(delta.indices, want.values), site
        is_new = torch.isin(delta.indices, regrown)
        got = optimizer.state[delta.values]
        for mine, theirs in ((delta.values.detach(), updated), (got["exp_avg"],
                             state["exp_avg"]), (got["exp_avg_sq"], state["exp_avg_sq"])):
            assert torch.equal(mine[is_new], torch.zeros(count))  # regrown: zero, fresh moments
            torch.testing.assert_close(mine[~is_new], theirs[kept])  # kept: follow position


def test_resume_re_arms_a_regrowth_due_at_the_next_step() -> None:
    model = _regrowing()
    model.resume_schedule(1, 4)  # resumed after step 1: step 2 regrows
    assert all(d.probe is not None and d.probe.count > 0 for d in sparse_deltas(model).values())
    model.resume_schedule(2, 4)
    assert all(d.probe is None for d in sparse_deltas(model).values())


@pytest.mark.parametrize("fields, message", [
    (dict(method="bottleneck", schedule="regrow"), "sparse_delta"),
    (dict(method="sparse_delta", schedule="regrow", regrow_fraction=1.0), "regrow_fraction"),
    (dict(method="sparse_delta", schedule="regrow", regrow_every=0), "regrow_every"),
])
def test_bad_regrow_settings_name_the_field(fields, message) -> None:
    with pytest.raises(spadapt.ConfigError, match=message):
        spadapt.AdapterConfig(**fields)
