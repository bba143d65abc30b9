"""Memory and speed levers on the decoder: fp32, bf16 autocast, gradient checkpointing, int8 base.

SmolLM2-135M-Instruct with a sparse_delta (1% of its linear weights), trained by `spadapt.train`
on batches of 8 rows of exactly the setting's length in tokens (chatterbot_qa text). Each
setting runs in a fresh process, so its peak is its own: the train loop's `peak_memory_bytes`
(the process's resident high-water mark from the first step on, VmHWM on Linux; the loaded,
and quantized, base included). Reported: that peak, the median step time, and the mean loss of
the last 4 steps (same rows, same seed: int8 against fp32 is then a loss difference).
Sequential runs, not interleaved: ratios are indicative. `--settings a,b` runs those again
and keeps the others' earlier results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from spadapt import atomic

from .common import RESULTS_DIR

RESULTS = RESULTS_DIR / "decoder_levers.json"
# name: (train settings, sequence length, steps). fp32 and int8 run 32 steps, so that their
# losses after 32 steps compare; at 512 tokens a step takes about a minute on 2 cores, and
# memory, not loss, is the question there.
SETTINGS = {
    "fp32": ({}, 128, 32),
    "int8": ({"base_quantization": "int8"}, 128, 32),
    "bf16": ({"precision": "bf16"}, 128, 8),
    "fp32_512": ({}, 512, 2),
    "checkpointing_512": ({"gradient_checkpointing": True}, 512, 2),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--steps", type=int, default=None,
                        help="steps of every setting (default: each setting's own)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child run


def main(args: argparse.Namespace) -> dict:
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.steps)))
        return {}
    results = {"settings": {"model": "builtin:smollm2", "batch_size": 8,
                            "adapter": "sparse_delta, density 0.01, magnitude"}, "runs": {}}
    if args.out.exists():  # the settings not run again keep their earlier results
        results["runs"] = json.loads(args.out.read_text()).get("runs", {})
    for name in args.settings.split(","):
        steps = args.steps or SETTINGS[name][2]
        child = subprocess.run([sys.executable, "-m", "benchmarks", "levers", "--one", name,
                                "--steps", str(steps)], capture_output=True, text=True,
                               check=True)
        results["runs"][name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(name, results["runs"][name], flush=True)
        atomic.write_file(args.out, json.dumps(results, indent=1).encode())
    return results


def run_one(name: str, steps: int) -> dict:
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging

    import spadapt
    from spadapt.assets import resolve_model
    from spadapt.data import PromptExample, load_dataset
    from spadapt.tasks import CausalLMTask
    from spadapt.train import TrainConfig, train

    logging.set_verbosity_error()
    overrides, length, _ = SETTINGS[name]
    torch.manual_seed(0)
    path = str(resolve_model("builtin:smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    task = CausalLMTask(tokenizer, max_length=length, max_new_tokens=1, chat_template=False)
    base = task.load_base(path)
    model = spadapt.attach(base, spadapt.AdapterConfig(method="sparse_delta", density=0.01,
                                                       scorer="magnitude"), calibration=None)
    # rows of exactly `length` tokens: a short prompt and a long response cut to fit
    pairs = load_dataset("builtin:chatterbot_qa").train
    text = " ".join(f"{e.prompt} {e.response}" for e in pairs)
    words = text.split() * 4  # enough for 8 rows × steps × 512 words
    rows = [PromptExample("Continue:", " ".join(words[i * length : (i + 1) * length]))
            for i in range(8 * steps)]
    config = TrainConfig(learning_rate=1e-2, epochs=1, max_steps=steps, batch_size=8,
                         eval_batch_size=1, early_stopping_patience=None, checkpoint_every=0,
                         log_every=1, progress=False, log_csv=False, log_tensorboard=False,
                         **overrides)
    started = time.perf_counter()
    result = train(model, task, rows, rows[:1], config)
    losses = [p["train_loss"] for p in result.history if p.get("train_loss") is not None]
    return {"length": length, "steps": steps, "peak_bytes": result.peak_memory_bytes,
            "step_seconds_median": result.step_seconds_median,
            "loss_last4": statistics.fmean(losses[-4:]), "losses": losses,
            "wall_seconds": time.perf_counter() - started}
