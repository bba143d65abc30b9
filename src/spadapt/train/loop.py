"""The training loop, on Hugging Face Accelerate: readable top to bottom in one file.

AdamW with linear warm-up and decay, gradient accumulation, evaluation `evals_per_epoch` times
per epoch, early stopping, best-checkpoint selection, atomic checkpoints and exact resume
(data order, RNG, optimizer, scheduler and mask-schedule state are all restored), a progress
bar with loss and examples/s, CSV and TensorBoard logs, and cost meters. Under
`accelerate launch` every process trains its shard of each batch (DDP/FSDP/DeepSpeed come from
Accelerate, not from here); only the main process writes files.

Works for a spadapt `AdaptedModel` (mask schedule, L0 term, pruned weights kept at zero), a
PEFT model, or a plain model (full fine-tuning): whatever has `requires_grad` is trained.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..masks import SCHEDULES, keep_pruned_at_zero
from ..model import AdaptedModel
from .checkpoint import load_checkpoint, restore_tensors, save_checkpoint
from .config import TrainConfig
from .levers import autocast, checkpoint_activations, quantize_base
from .meters import PeakMemory, StepTimer


@dataclass
class TrainResult:
    history: list[dict]  # rows: epoch, step, train_loss, eval_* (None between evaluations)
    final_metrics: dict  # metrics of the returned model (best checkpoint, masks final)
    best_step: int | None  # step of the selected checkpoint (None = the last state)
    steps: int  # optimizer steps taken (this run and any resumed part)
    train_seconds: float  # wall time of the training part of this run (evaluations excluded)
    step_seconds: list[float] = field(default_factory=list)  # per optimizer step, this run
    examples_per_second: float = 0.0  # training examples / train_seconds
    peak_memory_bytes: int = 0  # peak RSS (CPU) or peak allocated (GPU) during this run

    @property
    def step_seconds_median(self) -> float:
        return statistics.median(self.step_seconds) if self.step_seconds else 0.0


def _linear_schedule(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """Learning-rate factor of step `step` (0-based): linear warm-up to 1, then linear decay.

    Not transformers' `get_linear_schedule_with_warmup`: that one gives the first step a
    learning rate of 0 (factor step / warmup); here step 0 already trains at 1 / warmup, and
    every recorded result was measured so.
    """
    warmup = int(round(warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _schedule_allows_selection(model: nn.Module, step: int, total: int) -> bool:
    """Only states with final-density masks may be selected as the best checkpoint."""
    if not isinstance(model, AdaptedModel) or model.active_adapter is None:
        return True
    config = model.configs[model.active_adapter]
    if SCHEDULES[config.schedule].final_from_prune_end:
        return step >= round(config.prune_end * total)
    return True


class _Logs:
    """metrics.csv and TensorBoard, main process only."""

    def __init__(self, out_dir: Path | None, config: TrainConfig, enabled: bool) -> None:
        self.csv_path = out_dir / "metrics.csv" if out_dir and enabled and config.log_csv else None
        self.writer = None
        if out_dir and enabled and config.log_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def log(self, step: int, values: dict) -> None:
        """One row per number (long format: step, metric, value), so any metric fits."""
        scalars = {k: v for k, v in values.items()
                   if isinstance(v, int | float) and k not in ("step", "epoch")}
        if self.csv_path is not None:
            new = not self.csv_path.exists()
            with open(self.csv_path, "a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(["step", "epoch", "metric", "value"])
                for key, value in sorted(scalars.items()):
                    writer.writerow([step, values.get("epoch", ""), key, value])
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


_HEAD = re.compile(r"(?:^|\.)(?:classifier|score)\.")  # task heads in every layout we wrap


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Trainable parameters, with task-head parameters in their own group when asked."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if config.head_learning_rate is None:
        return [{"params": [p for _, p in trainable]}]
    head = [p for n, p in trainable if _HEAD.search(n)]
    body = [p for n, p in trainable if not _HEAD.search(n)]
    groups = [{"params": body}] if body else []
    return groups + ([{"params": head, "lr": config.head_learning_rate}] if head else [])


def _epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(size, generator=generator).tolist()


def train(model: nn.Module, task, train_examples: Sequence, eval_examples: Sequence,
          config: TrainConfig, out_dir: Path | None = None, resume: bool = False,
          accelerator=None, on_step: Callable[[int], None] | None = None,
          on_evaluation: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train `model` in place and return what happened. See the module docstring.

    out_dir: where checkpoints (`checkpoints/latest`, `checkpoints/best`) and logs go.
    resume: continue from `out_dir/checkpoints/latest` when it exists.
    on_step: called after each optimizer step (and its checkpoint) with the step number.
    on_evaluation: called after each evaluation during training with (step, metrics); an
        exception it raises ends the run (a tuning pruner stops a trial so).
    """
    from accelerate import Accelerator

    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    if config.gradient_checkpointing:
        checkpoint_activations(model)
    if config.base_quantization != "none":
        quantize_base(model, config.base_quantization)
    torch.manual_seed(config.seed)
    unwrapped = model
    optimizer = torch.optim.AdamW(_parameter_groups(model, config), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    if isinstance(model, AdaptedModel):
        keep_pruned_at_zero(model, optimizer)

    world = accelerator.num_processes
    global_batch = config.batch_size * world
    micro_per_epoch = max(1, math.ceil(len(train_examples) / global_batch))
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / config.gradient_accumulation))
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _linear_schedule(total_steps, config.warmup_ratio))
    deepspeed = getattr(accelerator.state, "deepspeed_plugin", None)
    if deepspeed is not None:  # DeepSpeed sizes its engine from a dataloader we do not
        # prepare; it steps inside `accelerator.backward`, at each accumulation boundary
        deepspeed.deepspeed_config.update(
            train_micro_batch_size_per_gpu=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation,
            train_batch_size=config.batch_size * config.gradient_accumulation * world)
    model, optimizer = accelerator.prepare(model, optimizer)

    checkpoints = out_dir / "checkpoints" if out_dir is not None else None
    state = {"step": 0, "epoch": 0, "micro": 0, "history": [], "best_metric": None,
             "best_step": None, "bad_evals": 0, "stopped": False, "schedule": None,
             "loss_sum": 0.0, "loss_count": 0, "seen_examples": 0}
    if resume and checkpoints is not None and (checkpoints / "latest").exists():
        state = load_checkpoint(checkpoints / "latest", unwrapped, optimizer.optimizer,
                                scheduler)
        _restore_schedule_state(unwrapped, state.get("schedule"))
    is_main = accelerator.is_main_process
    if out_dir is not None and is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    logs = _Logs(out_dir, config, is_main)
    timer, memory = StepTimer(), PeakMemory(accelerator.device)
    memory.reset()
    train_seconds, started_examples = 0.0, state["seen_examples"]
    progress = _progress(config.progress and is_main, total_steps, state["step"])

    def checkpoint(name: str) -> None:
        if checkpoints is None:
            return
        if is_main:
            state["schedule"] = _schedule_state(unwrapped)
            save_checkpoint(checkpoints / name, unwrapped, optimizer.optimizer, scheduler, state)
        accelerator.wait_for_everyone()

    def record(metrics: dict | None) -> None:
        """A history row: mean train loss since the last row, and eval metrics if any."""
        train_loss = state["loss_sum"] / state["loss_count"] if state["loss_count"] else None
        row = {"epoch": state["epoch"], "step": state["step"], "train_loss": train_loss,
               "eval_loss": None, "eval_accuracy": None,
               **{f"eval_{k}": v for k, v in (metrics or {}).items() if k != "confusion_matrix"}}
        state["history"].append(row)
        state["loss_sum"], state["loss_count"] = 0.0, 0
        logs.log(state["step"], row)

    last_evaluation: dict = {}  # step -> metrics of the latest evaluation in this process

    def measure() -> dict:
        """The task's metrics on the evaluation rows, under the run's precision."""
        with autocast(config.precision, accelerator.device):
            return task.evaluate(unwrapped, eval_examples, config.eval_batch_size)

    def evaluate() -> None:
        metrics = measure()
        last_evaluation.clear()
        last_evaluation[state["step"]] = metrics
        record(metrics)
        score = metrics[task.metric]
        if _schedule_allows_selection(unwrapped, state["step"], total_steps):
            if state["best_metric"] is None or score > state["best_metric"]:
                state["best_metric"], state["best_step"], state["bad_evals"] = score, \
                    state["step"], 0
                if state["step"] < total_steps:  # the last state is kept as it is anyway
                    checkpoint("best")
            else:
                state["bad_evals"] += 1
        patience = config.early_stopping_patience
        if patience is not None and state["bad_evals"] >= patience:
            state["stopped"] = True
        if on_evaluation is not None:
            on_evaluation(state["step"], metrics)

    if isinstance(unwrapped, AdaptedModel):
        unwrapped.resume_schedule(state["step"], total_steps)
    model.train()
    while not state["stopped"] and state["step"] < total_steps and state["epoch"] < config.epochs:
        order = _epoch_order(len(train_examples), config.seed, state["epoch"])
        eval_points = {round(micro_per_epoch * (i + 1) / config.evals_per_epoch) - 1
                       for i in range(config.evals_per_epoch)}
        while state["micro"] < micro_per_epoch:
            micro = state["micro"]
            start = micro * global_batch + accelerator.process_index * config.batch_size
            rows = [order[(start + j) % len(order)] for j in range(config.batch_size)]
            if micro * global_batch + accelerator.process_index * config.batch_size >= len(order):
                rows = rows[:1]  # past the end: one wrapped row keeps every process in step
            batch = {k: v.to(accelerator.device)
                     for k, v in task.collate([train_examples[i] for i in rows]).items()}
            boundary = (micro + 1) % config.gradient_accumulation == 0 or \
                micro + 1 == micro_per_epoch
            if micro % config.gradient_accumulation == 0:
                timer.start()
                step_started = time.perf_counter()
            context = accelerator.no_sync(model) if not boundary else contextlib.nullcontext()
            with context, autocast(config.precision, accelerator.device):
                loss = model(**batch).loss
                regularization = unwrapped.regularization_loss() \
                    if isinstance(unwrapped, AdaptedModel) else None
                total_loss = loss if regularization is None else loss + regularization
                accelerator.backward(total_loss / config.gradient_accumulation)
            state["loss_sum"] += float(loss.detach())
            state["loss_count"] += 1
            state["seen_examples"] += len(rows) * world
            state["micro"] += 1
            if boundary:
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                state["step"] += 1
                timer.stop()
                train_seconds += time.perf_counter() - step_started
                if isinstance(unwrapped, AdaptedModel):
                    unwrapped.step_schedule(state["step"], total_steps)
                progress.update(state["step"], float(loss.detach()),
                                (state["seen_examples"] - started_examples) / max(train_seconds,
                                                                                  1e-9))
            evaluating = boundary and (micro in eval_points or state["step"] >= total_steps)
            if boundary:
                if not evaluating and config.log_every and state["step"] % config.log_every == 0:
                    record(None)  # before the checkpoint, so that a resumed run has the row
                periodic = config.checkpoint_every and state["step"] % config.checkpoint_every == 0
                if periodic and not evaluating:  # an evaluation step checkpoints after it
                    checkpoint("latest")
                if on_step is not None:
                    on_step(state["step"])
            if evaluating:
                evaluate()
                checkpoint("latest")
            if state["stopped"] or state["step"] >= total_steps:
                break
        if state["micro"] >= micro_per_epoch:
            state["epoch"], state["micro"] = state["epoch"] + 1, 0
    progress.close()
    logs.close()
    peak = memory.peak_bytes()

    unchanged = True  # is the model still the one `last_evaluation` measured?
    if state["best_step"] is not None and checkpoints is not None and \
            state["best_step"] != state["step"]:
        restore_tensors(unwrapped, _best_tensors(checkpoints / "best"))
        unchanged = False
    if isinstance(unwrapped, AdaptedModel) and unwrapped.active_adapter is not None:
        unchanged = unchanged and unwrapped.masks_final(unwrapped.active_adapter)
        unwrapped.finalize_masks()
    final = last_evaluation.get(state["step"]) if unchanged else None
    if final is None:
        final = measure()
    unwrapped.eval()
    return TrainResult(
        history=state["history"], final_metrics=final, best_step=state["best_step"],
        steps=state["step"], train_seconds=train_seconds, step_seconds=timer.durations,
        examples_per_second=(state["seen_examples"] - started_examples) / max(train_seconds,
                                                                              1e-9),
        peak_memory_bytes=peak,
    )


def _best_tensors(directory: Path) -> dict[str, torch.Tensor]:
    import safetensors.torch

    return safetensors.torch.load_file(directory / "model.safetensors")


def _schedule_state(model: nn.Module) -> dict | None:
    if not isinstance(model, AdaptedModel) or model.active_adapter is None:
        return None
    schedule = model.schedules.get(model.active_adapter)
    density = getattr(schedule, "current_density", None)
    return {"current_density": density} if density is not None else None


def _restore_schedule_state(model: nn.Module, saved: dict | None) -> None:
    if saved and isinstance(model, AdaptedModel) and model.active_adapter is not None:
        model.schedules[model.active_adapter].current_density = saved["current_density"]


class _progress:
    """A rich progress bar with loss and examples/s (no-op when disabled)."""

    def __init__(self, enabled: bool, total: int, completed: int) -> None:
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                                TextColumn("loss {task.fields[loss]:.4f}"),
                                TextColumn("{task.fields[speed]:.1f} ex/s"),
                                TimeRemainingColumn(), transient=True)
            self.task = self.bar.add_task("train", total=total, completed=completed,
                                          loss=float("nan"), speed=0.0)
            self.bar.start()

    def update(self, step: int, loss: float, speed: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=loss, speed=speed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
