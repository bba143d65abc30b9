"""Schedule "regrow" (SpIEL-style): a sparse delta drops its positions of smallest |Δ| and
regrows as many where the frozen weight's gradient is largest, with an exact budget at every
step, inside its weights, values and Adam moments following their positions; a bottleneck's
masked weights do the same with |w| and the gradient of the effective weight."""

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


def _masked(model: spadapt.AdaptedModel) -> dict:
    """The masked bottleneck weights of adapter "default", by site and local name."""
    return {f"{w.site_name}/{local}": weight for w, m in model.adapter_modules("default")
            if hasattr(m, "masked_weights") for local, weight in m.masked_weights().items()}


def _bottleneck_regrowing() -> spadapt.AdaptedModel:
    return spadapt.attach(tiny_bert(), spadapt.AdapterConfig(
        method="bottleneck", bottleneck=8, scorer="random", density=0.3, schedule="regrow",
        regrow_every=2, regrow_fraction=0.5, prune_end=1.0))


def test_bottleneck_masks_keep_their_counts_and_move() -> None:
    model = _bottleneck_regrowing()
    optimizer = _optimizer(model)
    keep_pruned_at_zero(model, optimizer)
    weights = _masked(model)
    assert weights and all(w.mask is not None for w in weights.values())  # chosen at attach
    counts = {name: w.kept for name, w in weights.items()}
    first = {name: w.mask.clone() for name, w in weights.items()}
    model.train()
    model.resume_schedule(0, 8)
    for step in range(1, 9):
        schedule_step(model, optimizer, step, 8)
        for name, weight in weights.items():
            assert weight.kept == counts[name], (step, name)
            assert bool((weight.weight[~weight.mask] == 0).all())
    assert any(not torch.equal(w.mask, first[n]) for n, w in weights.items())
    assert all(w.regrow_count == 0 for w in weights.values())  # step 8 = prune_end


def test_a_bottleneck_regrowth_drops_the_smallest_weights_and_regrows_at_the_largest_gradients(
        ) -> None:
    model = _bottleneck_regrowing()
    optimizer = _optimizer(model)
    keep_pruned_at_zero(model, optimizer)
    model.eval()
    schedule_step(model, optimizer, 1, 4)  # arms every masked weight for step 2
    weights = _masked(model)
    counts = {name: w.regrow_count for name, w in weights.items()}
    assert all(c == round(0.5 * 0.5 * w.kept) > 0 for c, w in
               zip(counts.values(), weights.values(), strict=True))
    batch = make_batch("bert", seed=2)

    # by hand, on copies: the effective weights' gradients at step 2, and step 2 taken by a
    # plain AdamW without any regrowth
    probe_copy = copy.deepcopy(model)
    effective = {}

    def keep(name: str):
        def hook(module, args, out) -> None:
            out.retain_grad()
            effective[name] = out
        return hook

    for name, weight in _masked(probe_copy).items():
        weight.arm_regrow(0)
        weight.register_forward_hook(keep(name))
    probe_copy(**batch).loss.backward()
    plain = copy.deepcopy(model)
    for weight in _masked(plain).values():
        weight.arm_regrow(0)
    plain_optimizer = _optimizer(plain)
    plain_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    plain(**batch).loss.backward()
    plain_optimizer.step()

    model(**batch).loss.backward()
    optimizer.step()  # the regrowth happens in the optimizer's post-step hook
    for name, weight in weights.items():
        old = _masked(plain)[name]
        kept = old.mask.flatten()
        slots = kept.nonzero().flatten()
        dropped = slots[torch.sort(old.weight.detach().flatten()[slots].abs(),
                                   stable=True).indices[:counts[name]]]
        scores = effective[name].grad.abs().flatten().clone()
        scores[kept] = -1
        regrown = torch.topk(scores, counts[name]).indices
        want = kept.clone()
        want[dropped], want[regrown] = False, True
        assert torch.equal(weight.mask.flatten(), want), name
        state, theirs = optimizer.state[weight.weight], plain_optimizer.state[old.weight]
        for mine, reference in ((weight.weight.detach(), old.weight.detach()),
                                (state["exp_avg"], theirs["exp_avg"]),
                                (state["exp_avg_sq"], theirs["exp_avg_sq"])):
            mine, reference = mine.flatten(), reference.flatten()
            assert bool((mine[~want] == 0).all())  # dropped and pruned: zero, no moments
            assert bool((mine[regrown] == 0).all())  # regrown: start at zero
            kept_on = want & kept
            torch.testing.assert_close(mine[kept_on], reference[kept_on])


def test_resume_re_arms_a_bottleneck_regrowth_due_at_the_next_step() -> None:
    model = _bottleneck_regrowing()
    model.resume_schedule(1, 4)
    assert all(w.regrow_count > 0 for w in _masked(model).values())
    model.resume_schedule(2, 4)
    assert all(w.regrow_count == 0 for w in _masked(model).values())


@pytest.mark.parametrize("fields, message", [
    (dict(method="bottleneck", schedule="regrow"), "density < 1"),
    (dict(method="sparse_delta", schedule="regrow", regrow_fraction=1.0), "regrow_fraction"),
    (dict(method="sparse_delta", schedule="regrow", regrow_every=0), "regrow_every"),
])
def test_bad_regrow_settings_name_the_field(fields, message) -> None:
    with pytest.raises(spadapt.ConfigError, match=message):
        spadapt.AdapterConfig(**fields)
