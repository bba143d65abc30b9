"""Schedule "lottery" (LT-SFT): a dense phase, then the entries that moved most are kept,
reset and trained sparsely; exact budget at every step, inside the target weights, the dense
phase's tensors and optimizer state dropped at the choice."""

from __future__ import annotations

import copy

import pytest
import torch

import spadapt
from conftest import make_batch, schedule_step, sparse_deltas, tiny_bert
from spadapt.masks import (
    MaskedWeight,
    budget_total,
    keep_pruned_at_zero,
    kept_count,
    topk_masks,
)


def _lottery(**overrides) -> spadapt.AdaptedModel:
    values = {"method": "sparse_delta", "scorer": "magnitude", "density": 0.05,
              "schedule": "lottery", "prune_end": 0.5, **overrides}
    return spadapt.attach(tiny_bert(), spadapt.AdapterConfig(**values))


def _optimizer(model) -> torch.optim.AdamW:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                                  weight_decay=0.0)
    keep_pruned_at_zero(model, optimizer)
    return optimizer


def test_the_dense_phase_trains_a_dense_delta_and_leaves_the_values_at_zero() -> None:
    model = _lottery()
    optimizer = _optimizer(model)
    model.train()
    model.resume_schedule(0, 8)
    schedule_step(model, optimizer, 1, 8)
    for delta in sparse_deltas(model).values():
        assert delta.dense is not None and delta.dense.shape == delta.shape
        assert delta.dense.requires_grad and float(delta.dense.detach().abs().sum()) > 0
        assert torch.equal(delta.values.detach(), torch.zeros_like(delta.values))
        assert delta.values not in optimizer.state  # no gradient reached the values


def test_the_dense_phase_adds_its_scale_times_the_dense_delta_to_the_weight() -> None:
    model = _lottery(dense_lr_scale=0.25)
    site, delta = next(iter(sparse_deltas(model).items()))
    layer = model.base_model.get_submodule(site).base_layer
    with torch.no_grad():
        delta.dense.normal_()
    x = torch.randn(3, 5, layer.in_features, requires_grad=True)
    y = delta.linear(x, layer)
    want = torch.nn.functional.linear(x, layer.weight + 0.25 * delta.dense.detach(),
                                      layer.bias)
    torch.testing.assert_close(y, want)
    grad_y = torch.randn_like(y)
    y.backward(grad_y)
    by_hand = 0.25 * grad_y.reshape(-1, grad_y.shape[-1]).t() @ x.detach().reshape(
        -1, x.shape[-1])
    torch.testing.assert_close(delta.dense.grad, by_hand)
    assert delta.values.grad is None


def test_the_choice_keeps_each_layers_count_where_the_dense_delta_moved_most() -> None:
    model = _lottery()
    optimizer = _optimizer(model)
    model.train()
    model.resume_schedule(0, 8)
    deltas = sparse_deltas(model)
    counts = {site: d.values.numel() for site, d in deltas.items()}
    sizes = {site: d.shape[0] * d.shape[1] for site, d in deltas.items()}
    assert sum(counts.values()) == budget_total(sizes, 0.05, "global")
    for step in range(1, 4):
        schedule_step(model, optimizer, step, 8)
    dense = {site: d.dense for site, d in deltas.items()}
    # step 4 = round(0.5 x 8): its update lands in the dense deltas, then the choice
    model(**make_batch("bert", seed=4)).loss.backward()
    optimizer.step()
    for site, delta in deltas.items():
        assert delta.dense is None
        assert dense[site].numel() == 0 and dense[site] not in optimizer.state  # freed
        assert delta.values not in optimizer.state  # the sparse phase starts afresh
        assert delta.indices.numel() == delta.values.numel() == counts[site]
        assert bool((delta.indices.diff() > 0).all())
        assert 0 <= int(delta.indices.min()) and int(delta.indices.max()) < sizes[site]
        assert torch.equal(delta.values.detach(), torch.zeros(counts[site]))  # reset
    optimizer.zero_grad()
    model.step_schedule(4, 8)
    for step in range(5, 9):  # the sparse phase: positions stay, values train
        positions = {site: d.indices.clone() for site, d in deltas.items()}
        schedule_step(model, optimizer, step, 8)
        for site, delta in deltas.items():
            assert torch.equal(delta.indices, positions[site])
    assert any(float(d.values.detach().abs().sum()) > 0 for d in deltas.values())


def test_the_kept_positions_are_the_largest_changes_by_hand() -> None:
    model = _lottery()
    optimizer = _optimizer(model)
    model.train()
    model.resume_schedule(0, 2)
    deltas = sparse_deltas(model)
    model(**make_batch("bert", seed=1)).loss.backward()
    # step 1 = round(0.5 x 2) chooses: compute the dense deltas after this step by hand
    saved = {site: (d.dense.detach().clone(), d.dense.grad.clone()) for site, d in
             deltas.items()}
    reference = torch.optim.AdamW([torch.nn.Parameter(t.clone()) for t, _ in saved.values()],
                                  lr=1e-2, weight_decay=0.0)
    for parameter, (_, grad) in zip(reference.param_groups[0]["params"], saved.values(),
                                    strict=True):
        parameter.grad = grad
    reference.step()
    optimizer.step()
    for (site, delta), moved in zip(deltas.items(), reference.param_groups[0]["params"],
                                    strict=True):
        want = torch.topk(moved.detach().abs().flatten(), delta.values.numel()).indices.sort()
        assert torch.equal(delta.indices, want.values), site


def test_a_bottleneck_keeps_the_exact_budget_where_it_moved_and_rewinds_to_init() -> None:
    model = spadapt.attach(tiny_bert(), spadapt.AdapterConfig(
        bottleneck=8, density=0.2, schedule="lottery", prune_end=0.5))
    optimizer = _optimizer(model)
    weights = [m for m in model.modules() if isinstance(m, MaskedWeight)]
    initial = [w.weight.detach().clone() for w in weights]
    model.train()
    model.resume_schedule(0, 4)
    schedule_step(model, optimizer, 1, 4)
    assert all(w.mask is None for w in weights)  # dense phase
    model(**make_batch("bert", seed=2)).loss.backward()
    # by hand: the weights after step 2's update, on copies under a plain AdamW
    params = optimizer.param_groups[0]["params"]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    reference = torch.optim.AdamW(copies, lr=1e-2, weight_decay=0.0)
    reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    for mine, theirs in zip(copies, params, strict=True):
        mine.grad = None if theirs.grad is None else theirs.grad.clone()
    reference.step()
    after = {id(p): c.detach() for p, c in zip(params, copies, strict=True)}
    moved = {str(i): (after[id(w.weight)] - w0).abs() for i, (w, w0) in
             enumerate(zip(weights, initial, strict=True))}
    want = topk_masks(moved, 0.2, "global")
    optimizer.step()  # step 2 = round(0.5 x 4): the choice
    assert all(torch.equal(w.mask, want[str(i)]) for i, w in enumerate(weights))
    total = sum(w.weight.numel() for w in weights)
    assert sum(w.kept for w in weights) == kept_count(0.2, total)
    assert all(w.weight not in optimizer.state for w in weights)
    for weight, w0 in zip(weights, initial, strict=True):
        assert torch.equal(weight.weight.detach(), w0 * weight.mask)  # rewound, pruned = 0
    optimizer.zero_grad()
    model.step_schedule(2, 4)
    masks = [w.mask.clone() for w in weights]
    for step in (3, 4):
        schedule_step(model, optimizer, step, 4)
        assert all(torch.equal(w.mask, m) for w, m in zip(weights, masks, strict=True))
        assert all(float(w.weight.detach()[~w.mask].abs().sum()) == 0 for w in weights)
    model.finalize_masks()
    assert sum(w.kept for w in weights) == kept_count(0.2, total)


def test_finalize_before_the_choice_keeps_the_dense_values_at_the_kept_positions() -> None:
    model = _lottery(prune_end=1.0)
    optimizer = _optimizer(model)
    model.train()
    model.resume_schedule(0, 8)
    schedule_step(model, optimizer, 1, 8)
    dense = {site: d.dense_scale * d.dense.detach() for site, d in sparse_deltas(model).items()}
    model.finalize_masks()
    for site, delta in sparse_deltas(model).items():
        assert delta.dense is None
        assert torch.equal(delta.values.detach(), dense[site].flatten()[delta.indices])
        assert float(delta.values.detach().abs().sum()) > 0


def test_a_saved_lottery_adapter_loads_its_chosen_positions(tmp_path) -> None:
    model = _lottery()
    optimizer = _optimizer(model)
    model.train()
    model.resume_schedule(0, 4)
    for step in range(1, 5):
        schedule_step(model, optimizer, step, 4)
    model.finalize_masks()
    model.eval()
    batch = make_batch("bert", seed=9)
    with torch.no_grad():
        want = model(**batch).logits
    model.save_adapter(tmp_path / "a")
    loaded = spadapt.AdaptedModel(tiny_bert())
    loaded.load_adapter(tmp_path / "a", adapter_name="default")
    loaded.set_adapter("default")
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, want)


def test_config_refuses_a_scorer_for_a_bottleneck_lottery() -> None:
    with pytest.raises(spadapt.ConfigError, match="lottery.*scorer='random'"):
        spadapt.AdapterConfig(density=0.2, schedule="lottery", scorer="snip")


def test_the_lottery_recipe_counts_its_dense_phase_in_the_poc(tmp_path) -> None:
    from spadapt.poc import run_poc
    from spadapt.poc_options import PocOptions
    from spadapt.recipe import load_recipe
    from train_fixtures import base_model, examples, task

    classification = task()
    model_dir = tmp_path / "tiny-bert"
    base_model(classification.tokenizer.vocab_size).save_pretrained(model_dir)
    classification.tokenizer.save_pretrained(model_dir)
    rows = "\n".join(f"{e.text},{e.label}" for e in examples(96))
    (tmp_path / "train.csv").write_text("text,label\n" + rows + "\n")
    results = run_poc(PocOptions(out=tmp_path / "run", data=str(tmp_path / "train.csv"),
                                 model=str(model_dir), methods=[load_recipe("lottery")],
                                 budget="smoke", progress=False))
    (method,) = results["methods"]
    assert "error" not in method, method
    targets = sum(m.weight.numel() for n, m in base_model(classification.tokenizer.vocab_size)
                  .named_modules() if isinstance(m, torch.nn.Linear) and ".layer." in n)
    assert method["trainable_params"] > targets  # the dense deltas of the first phase
    assert method["nonzero_params"] < targets / 10  # what is kept after it


@pytest.mark.parametrize("schedule", ["lottery", "regrow"])
def test_schedules_that_change_parameters_refuse_several_processes(monkeypatch,
                                                                     schedule) -> None:
    model = _lottery(schedule=schedule, regrow_every=1)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    with pytest.raises(spadapt.SpadaptError, match=f"schedule '{schedule}' runs in one process"):
        model.resume_schedule(0, 8)
