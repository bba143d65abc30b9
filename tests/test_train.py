"""The training loop: exact resume, gradient accumulation, early stopping, best-checkpoint
selection, logs and checkpoint files, mask schedules, and a 2-process Accelerate run (gloo)
that gives the same adapter as one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import spadapt
from spadapt.data import Example
from spadapt.masks import MaskedWeight, budget_total
from spadapt.train import TrainConfig, train
from train_fixtures import base_model, examples, task

TRAIN, EVAL = examples(96), examples(32, seed=1)


def _adapted(classification, **config):
    values = {"bottleneck": 8, "density": 0.3, "scorer": "magnitude", **config}
    calibration = [classification.collate(TRAIN[i : i + 8]) for i in (0, 8)]
    return spadapt.attach(base_model(classification.tokenizer.vocab_size),
                          spadapt.AdapterConfig(**values), calibration=calibration)


def _config(**overrides) -> TrainConfig:
    values = {"learning_rate": 1e-2, "epochs": 3, "batch_size": 16, "progress": False,
              "early_stopping_patience": None, "checkpoint_every": 4, "log_tensorboard": True,
              **overrides}
    return TrainConfig(**values)


def _adapter_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if ".adapters." in k}


@pytest.fixture(scope="module")
def classification():
    return task()


class Interrupted(Exception):
    pass


# (adapter settings, step the run is killed at): the learned schedule hardens its gates into
# masks at step 13 of 18 (prune_end 0.7); killed at 10 the resumed run crosses the hardening,
# killed at 17 it resumes from a checkpoint taken after it (step 16).
RESUME_CASES = [({}, 10), ({"schedule": "learned", "scorer": "random"}, 10),
                ({"schedule": "learned", "scorer": "random"}, 17),
                ({"method": "sparse_delta", "scorer": "fisher", "density": 0.05}, 10),
                # regrowths at steps 5 and 10; killed at 6 the run resumes from the checkpoint
                # of step 4, and must re-arm the regrowth of step 5
                ({"method": "sparse_delta", "density": 0.05, "schedule": "regrow",
                  "regrow_every": 5, "regrow_fraction": 0.5}, 6),
                ({"schedule": "regrow", "regrow_every": 5, "regrow_fraction": 0.5}, 6),
                # lottery chooses at step 13 (prune_end 0.7): killed at 10 the resumed run
                # crosses the choice, killed at 17 it resumes after it (dense delta dropped)
                ({"method": "sparse_delta", "density": 0.05, "schedule": "lottery"}, 10),
                ({"method": "sparse_delta", "density": 0.05, "schedule": "lottery"}, 17),
                ({"schedule": "lottery", "scorer": "random"}, 10),
                ({"schedule": "lottery", "scorer": "random"}, 17)]


@pytest.mark.parametrize(("settings", "kill_step"), RESUME_CASES)
def test_killed_run_resumes_to_the_same_result(classification, tmp_path, settings,
                                               kill_step) -> None:
    whole = _adapted(classification, **settings)
    expected = train(whole, classification, TRAIN, EVAL, _config(), out_dir=tmp_path / "whole")

    def kill(step: int) -> None:
        if step == kill_step:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(_adapted(classification, **settings), classification, TRAIN, EVAL, _config(),
              out_dir=tmp_path / "killed", on_step=kill)
    resumed_model = _adapted(classification, **settings)
    resumed = train(resumed_model, classification, TRAIN, EVAL, _config(),
                    out_dir=tmp_path / "killed", resume=True)
    assert resumed.steps == expected.steps == 18
    assert [r["step"] for r in resumed.history] == [r["step"] for r in expected.history]
    for got, want in zip(resumed.history, expected.history, strict=True):
        for key in ("eval_loss", "train_loss"):
            if want[key] is None:
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-5)
    a, b = _adapter_state(whole), _adapter_state(resumed_model)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-5, atol=1e-6)


def test_checkpoints_logs_and_no_pickle(classification, tmp_path) -> None:
    train(_adapted(classification), classification, TRAIN, EVAL, _config(),
          out_dir=tmp_path / "run")
    run = tmp_path / "run"
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert "metrics.csv" in files
    assert any(f.startswith("tensorboard/") for f in files)
    for name in ("latest", "best"):
        expected = {f"checkpoints/{name}/{file}" for file in
                    ("model.safetensors", "optimizer.safetensors", "trainer_state.json")}
        assert expected <= files
    assert not [f for f in files if f.endswith((".pt", ".bin", ".pkl"))]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    import csv

    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["step", "epoch", "metric", "value"]
    metrics = {r["metric"] for r in rows}
    assert {"train_loss", "eval_loss", "eval_accuracy", "eval_macro_f1"} <= metrics
    assert all(r["value"] not in ("", "None") for r in rows)


def test_gradient_accumulation_equals_the_larger_batch(classification) -> None:
    one = _adapted(classification)
    two = _adapted(classification)
    train(one, classification, TRAIN, EVAL, _config(batch_size=16, epochs=1))
    train(two, classification, TRAIN, EVAL, _config(batch_size=8, gradient_accumulation=2,
                                                    epochs=1))
    a, b = _adapter_state(one), _adapter_state(two)
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5)


def test_early_stopping_and_best_checkpoint(classification, tmp_path) -> None:
    model = _adapted(classification)
    result = train(model, classification, TRAIN, EVAL,
                   _config(learning_rate=1e-9, epochs=6, early_stopping_patience=2),
                   out_dir=tmp_path / "run")
    evaluations = [r for r in result.history if r["eval_accuracy"] is not None]
    assert len(evaluations) == 3  # the first evaluation sets the best; two more don't beat it
    best = max(r["eval_accuracy"] for r in evaluations)
    assert result.final_metrics["accuracy"] == pytest.approx(best)
    assert result.best_step == evaluations[0]["step"]


def test_best_checkpoint_is_restored(classification, tmp_path) -> None:
    model = _adapted(classification)
    result = train(model, classification, TRAIN, EVAL, _config(epochs=4, evals_per_epoch=2),
                   out_dir=tmp_path / "run")
    evaluations = [r for r in result.history if r["eval_accuracy"] is not None]
    scores = [r["eval_accuracy"] for r in evaluations]
    best_index = max(range(len(scores)), key=lambda i: (scores[i], -i))
    assert result.best_step == evaluations[best_index]["step"]
    assert result.final_metrics["loss"] == pytest.approx(evaluations[best_index]["eval_loss"],
                                                         rel=1e-5)
    assert len(result.history) > len(evaluations)  # train-loss rows between evaluations


class CountingTask:
    """The classification task, counting its evaluations."""

    def __init__(self, inner) -> None:
        self.inner, self.evaluations = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, *args, **kwargs) -> dict:
        self.evaluations += 1
        return self.inner.evaluate(*args, **kwargs)


@pytest.mark.parametrize("settings, repeated", [
    ({}, False),  # the last evaluation measured the returned model
    ({"schedule": "gradual", "prune_end": 0.5}, True),  # finalize_masks may change it
])
def test_the_final_evaluation_is_reused_only_when_nothing_changed_since(
        classification, tmp_path, settings, repeated) -> None:
    counting = CountingTask(classification)
    model = _adapted(classification, **settings)
    result = train(model, counting, TRAIN, EVAL, _config(epochs=1), out_dir=tmp_path / "run")
    assert counting.evaluations == 1 + repeated
    assert result.final_metrics == classification.evaluate(model, EVAL)
    assert not (tmp_path / "run" / "checkpoints" / "best").exists()  # best = the last state


def test_a_restored_best_checkpoint_is_evaluated_again(classification, tmp_path) -> None:
    counting = CountingTask(classification)
    model = _adapted(classification)
    result = train(model, counting, TRAIN, EVAL,
                   _config(learning_rate=1e-9, epochs=3, evals_per_epoch=2),
                   out_dir=tmp_path / "run")
    evaluations = [r for r in result.history if r["eval_accuracy"] is not None]
    assert result.best_step == evaluations[0]["step"] < result.steps  # no later one beats it
    assert counting.evaluations == len(evaluations) + 1
    assert result.final_metrics == classification.evaluate(model, EVAL)


def test_prediction_batches_by_length_and_answers_in_the_given_order(classification) -> None:
    model = base_model(classification.tokenizer.vocab_size).eval()
    rows = [Example(" ".join(["good film"] * (1 + i % 5)), i % 2) for i in range(11)]
    together, loss = classification.predict(model, rows, batch_size=4)
    alone = [classification.predict(model, [row], batch_size=1) for row in rows]
    torch.testing.assert_close(together, torch.cat([p for p, _ in alone]), rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(sum(value for _, value in alone) / len(rows), rel=1e-5)
    assert classification.predict(model, [], batch_size=4)[0].shape == (0, 2)


@pytest.mark.parametrize("schedule", ["gradual", "movement", "learned"])
def test_schedules_end_with_exact_masks(classification, schedule: str) -> None:
    scorer = "magnitude" if schedule == "gradual" else "random"
    model = _adapted(classification, schedule=schedule, scorer=scorer, prune_every=2)
    train(model, classification, TRAIN, EVAL, _config(epochs=2))
    weights = [m for _, a in model.adapter_modules("default") for m in a.modules()
               if isinstance(m, MaskedWeight)]
    sizes = {str(i): w.weight.numel() for i, w in enumerate(weights)}
    assert sum(w.kept for w in weights) == budget_total(sizes, 0.3, "global")
    assert all(torch.count_nonzero(w.weight[~w.mask]) == 0 for w in weights)
    assert model.masks_final("default")


def test_learned_gates_harden_at_prune_end_then_the_kept_weights_train(classification) -> None:
    model = _adapted(classification, schedule="learned", scorer="random", prune_end=0.5)
    weights = [m for _, a in model.adapter_modules("default") for m in a.modules()
               if isinstance(m, MaskedWeight)]
    seen = {}

    def watch(step: int) -> None:
        seen[step] = (all(w.log_alpha is not None for w in weights),
                      all(w.log_alpha is None and w.mask is not None for w in weights),
                      torch.cat([w.weight.detach().flatten() for w in weights]).clone())

    result = train(model, classification, TRAIN, EVAL, _config(epochs=2), on_step=watch)
    hardening = round(0.5 * result.steps)
    assert all(seen[s][0] for s in range(1, hardening))  # gated before prune_end
    assert all(seen[s][1] for s in range(hardening, result.steps + 1))  # masked after
    sizes = {str(i): w.weight.numel() for i, w in enumerate(weights)}
    assert sum(w.kept for w in weights) == budget_total(sizes, 0.3, "global")
    after_cut, last = seen[hardening][2], seen[result.steps][2]
    kept = torch.cat([w.mask.flatten() for w in weights])
    assert not torch.equal(after_cut[kept], last[kept])  # the kept weights went on training
    assert torch.count_nonzero(last[~kept]) == 0  # the cut ones stayed at zero
    assert model.masks_final("default")
    assert result.best_step is not None and result.best_step >= hardening  # hardened states only


def test_full_fine_tuning_and_peft_models_train(classification) -> None:
    from peft import LoraConfig, get_peft_model

    full = base_model(classification.tokenizer.vocab_size)
    before = full.bert.embeddings.word_embeddings.weight.clone()
    result = train(full, classification, TRAIN, EVAL, _config(epochs=1))
    assert not torch.equal(before, full.bert.embeddings.word_embeddings.weight)
    assert result.peak_memory_bytes > 0 and result.step_seconds_median > 0
    lora = get_peft_model(base_model(classification.tokenizer.vocab_size),
                          LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query"]))
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    result = train(lora, classification, TRAIN, EVAL, _config(epochs=1))
    assert result.steps == 6
    after = dict(lora.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    lora_b = {n for n in before if "lora_B" in n}
    assert lora_b and lora_b <= changed  # B starts at zero: LoRA trained only if B moved
    assert all(after[n].requires_grad for n in changed)  # the frozen base stayed as it was
    assert not any("lora_" in n or "classifier" in n for n in set(before) - changed
                   if after[n].requires_grad)


def test_two_process_accelerate_run_matches_one_process(tmp_path) -> None:
    job = Path(__file__).parent / "jobs" / "two_process_train.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    runs = {}
    for processes, batch in ((2, 8), (1, 16)):
        out = tmp_path / f"p{processes}"
        # accelerate 1.x runs `--cpu --num_processes 2` as ONE process unless MPI is set up;
        # `--multi_gpu` starts torchrun workers, which the job's Accelerator(cpu=True) joins
        # over gloo on a machine without GPUs.
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                   "--num_processes", str(processes), "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", str(job), str(out),
                   str(batch)]
        if processes == 1:
            command.remove("--multi_gpu")
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert (out / "steps.txt").read_text().split() == ["8", str(processes)]
        runs[processes] = out / "adapter"
    classification = task()
    loaded = {p: spadapt.load_adapter(base_model(classification.tokenizer.vocab_size), path)
              for p, path in runs.items()}
    batch = classification.collate(EVAL)
    batch.pop("labels")
    with torch.no_grad():
        two, one = (loaded[p].eval()(**batch).logits for p in (2, 1))
    torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-5)
    with torch.no_grad(), loaded[1].disable_adapter():
        assert not torch.allclose(one, loaded[1](**batch).logits)  # training changed something


@pytest.mark.parametrize("settings", [{}, {"method": "sparse_delta", "density": 0.05,
                                            "scorer": "magnitude"}])
def test_gradient_checkpointing_recomputes_and_trains_the_same_adapter(classification,
                                                                       settings) -> None:
    runs = {}
    for checkpointing in (False, True):
        model = _adapted(classification, **settings)
        query = model.base_model.bert.encoder.layer[0].attention.self.query
        calls: list[int] = []
        query.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        train(model, classification, TRAIN, EVAL,
              _config(epochs=1, max_steps=3, gradient_checkpointing=checkpointing))
        runs[checkpointing] = (_adapter_state(model), len(calls))
    (plain, plain_calls), (checkpointed, checkpointed_calls) = runs[False], runs[True]
    assert checkpointed_calls > plain_calls  # the block ran again in each backward
    for key in plain:
        torch.testing.assert_close(checkpointed[key], plain[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("settings", [{}, {"method": "sparse_delta", "density": 0.05,
                                            "scorer": "magnitude"}])
def test_bf16_autocasts_training_and_evaluation_and_keeps_trained_values_fp32(
        classification, settings) -> None:
    results, dtypes = {}, {}
    for precision in ("fp32", "bf16"):
        model = _adapted(classification, **settings)
        query = model.base_model.bert.encoder.layer[0].attention.self.query
        seen = dtypes[precision] = set()  # (training forward?, output dtype)
        handle = query.register_forward_hook(
            lambda module, inputs, out, seen=seen: seen.add((module.training, out.dtype)))
        results[precision] = train(model, classification, TRAIN, EVAL,
                                   _config(epochs=1, max_steps=4, precision=precision))
        handle.remove()
        assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert dtypes["fp32"] == {(True, torch.float32), (False, torch.float32)}
    assert dtypes["bf16"] == {(True, torch.bfloat16), (False, torch.bfloat16)}
    assert isinstance(results["bf16"].final_metrics["loss"], float)
    losses = {k: [r["train_loss"] for r in v.history if r["train_loss"] is not None][-1]
              for k, v in results.items()}
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.03)


SHARDED_COMMANDS = {
    "fsdp": "accelerate launch --use_fsdp --num_processes 2 --fsdp_sharding_strategy FULL_SHARD "
            "--fsdp_use_orig_params true tests/jobs/two_process_train.py OUT 8 fsdp",
    "zero3": "pip install 'spadapt[deepspeed]' && accelerate launch --use_deepspeed "
             "--zero_stage 3 --zero3_save_16bit_model true --num_processes 2 "
             "tests/jobs/two_process_train.py OUT 8 zero3",
}
SHARDED_FLAGS = {
    "fsdp": ["--use_fsdp", "--fsdp_sharding_strategy", "FULL_SHARD", "--fsdp_use_orig_params",
             "true"],
    "zero3": ["--use_deepspeed", "--zero_stage", "3", "--zero3_save_16bit_model", "true"],
}
# What each engine does on this CPU-only machine, checked by hand (accelerate 1.x):
NO_GPU_REASONS = {
    "fsdp": "Accelerate's FSDP needs accelerator devices: on CPU `accelerate launch --use_fsdp` "
            "stops with 'There are currently no available devices found, must be one of XPU, "
            "CUDA, MLU, NPU, MUSA, or HPU'",
    "zero3": "DeepSpeed ZeRO-3 starts on CPU, but each process's Accelerator reports "
             "num_processes 1 while DeepSpeed's world is 2, so DeepSpeed's batch check fails "
             "('train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * "
             "world_size 8 != 8 * 1 * 2') and the rows would not be sharded",
}


@pytest.mark.parametrize("engine", ["fsdp", "zero3"])
def test_sharded_run_matches_one_process(engine: str, tmp_path) -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip(f"{NO_GPU_REASONS[engine]}; on 2 GPUs: {SHARDED_COMMANDS[engine]}")
    if engine == "zero3":
        pytest.importorskip("deepspeed")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    job = Path(__file__).parent / "jobs" / "two_process_train.py"
    command = [sys.executable, "-m", "accelerate.commands.launch", *SHARDED_FLAGS[engine],
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(job), str(tmp_path / engine), "8", engine]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    one = tmp_path / "one"
    completed = subprocess.run([sys.executable, str(job), str(one), "16"], env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    classification = task()
    batch = classification.collate(EVAL)
    batch.pop("labels")
    loaded = [spadapt.load_adapter(base_model(classification.tokenizer.vocab_size), path)
              for path in (tmp_path / engine / "adapter", one / "adapter")]
    with torch.no_grad():
        sharded, single = (model.eval()(**batch).logits for model in loaded)
    torch.testing.assert_close(sharded, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("flags, native", [
    ("fpu sse2 avx2 avx512f avx512_bf16 avx512vl", True),  # AMD Zen 4, Intel Cooper Lake
    ("fpu sse2 avx2 avx512f amx_bf16 amx_tile", True),  # Intel Sapphire Rapids
    ("fpu sse2 avx2 avx512f avx512vl", False),  # bf16 only emulated: slower than fp32
])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(tmp_path, flags,
                                                                         native) -> None:
    from spadapt.train import levers

    cpu_info = tmp_path / "cpuinfo"
    cpu_info.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n"
                        f"processor\t: 1\nflags\t\t: {flags}\n")
    assert levers.native_bf16("cpu", cpu_info) is native
    assert levers.native_bf16("cpu", tmp_path / "missing") is False  # not Linux: fp32
    assert levers.native_bf16("meta") is False


def test_resolve_precision_keeps_a_set_precision_and_decides_auto(monkeypatch) -> None:
    from spadapt.train import TrainConfigError, levers

    for native in (True, False):
        monkeypatch.setattr(levers, "native_bf16", lambda device, native=native: native)
        assert levers.resolve_precision("fp32", "cpu") == ("fp32", "set")
        assert levers.resolve_precision("bf16", "cpu") == ("bf16", "set")
        assert levers.resolve_precision("auto", "cpu") == (
            ("bf16", "native_bf16") if native else ("fp32", "no_native_bf16"))
    with pytest.raises(TrainConfigError, match="'fp8'"):
        levers.resolve_precision("fp8", "cpu")
