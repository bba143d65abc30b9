"""Training step time and peak memory of every competitor against the frozen-base floor.

Time: all competitors live in one process and are timed interleaved (see common.interleaved):
each round gives every competitor `warmup` untimed and `repeats` timed steps on the same real
batch (32 × 64 tokens). Memory: one fresh child process per competitor (a process's resident
high-water mark cannot be shared fairly between methods run one after another in it), which
builds the model, resets the high-water mark and takes `memory_steps` steps; it reports that
peak and the resident size before the first step (base + method + Python), so the training
working set is their difference.

    python -m benchmarks step [--rounds 7] [--competitors floor,sparse,...]

`--model builtin:smollm2` (or a local causal LM's folder) measures the decoder instead, for
each lever: see decoder_step.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch

from . import decoder_step
from .common import (
    BATCH_SIZE,
    SEQUENCE_LENGTH,
    interleaved,
    load_base,
    ratio_summary,
    write_result,
)
from .competitors import COMPETITORS, make_trainee


def time_steps(names: list[str], rounds: int, warmup: int, repeats: int) -> dict:
    base = load_base()
    calibration = [base.batch(i) for i in range(2)]
    batch = base.batch(0)
    trainees = {name: make_trainee(name, base.model, calibration) for name in names}
    series = interleaved({name: (lambda t=t: t.step(batch)) for name, t in trainees.items()},
                         rounds=rounds, warmup=warmup, repeats=repeats)
    floor = series.get("floor")
    lora = series.get("lora")
    results = {}
    for name, trainee in trainees.items():
        entry = {"description": COMPETITORS[name][0],
                 "trainable_parameters": trainee.trainable_parameters(),
                 "step_seconds": series[name].summary()}
        if floor is not None:
            entry["ratio_to_floor"] = ratio_summary(series[name], floor)
        if lora is not None:
            entry["ratio_to_lora"] = ratio_summary(series[name], lora)
        results[name] = entry
    return results


def memory_of(name: str, steps: int) -> dict:
    """In this process: build `name`, then peak resident memory over `steps` steps."""
    from spadapt.train.meters import PeakMemory, release_memory

    base = load_base(rows=256)
    calibration = [base.batch(i) for i in range(2)]
    batch = base.batch(0)
    trainee = make_trainee(name, base.model, calibration)
    del base, calibration  # only the trained copy stays resident
    release_memory()
    meter = PeakMemory()
    meter.reset()
    before = meter.peak_bytes()
    for _ in range(steps):
        trainee.step(batch)
    return {"resident_before_bytes": before, "peak_bytes": meter.peak_bytes(),
            "reset_worked": meter.resettable}


def measure_memory(names: list[str], steps: int) -> dict:
    """Each competitor's memory_of, in its own fresh process."""
    results = {}
    for name in names:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.step", "--memory-child", name,
             "--memory-steps", str(steps)],
            capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"memory child for {name} failed:\n{completed.stderr[-2000:]}")
        results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    floor = results.get("floor")
    for entry in results.values():
        entry["working_set_bytes"] = entry["peak_bytes"] - entry["resident_before_bytes"]
        if floor is not None:
            entry["ratio_to_floor"] = entry["peak_bytes"] / floor["peak_bytes"]
            entry["working_set_ratio_to_floor"] = \
                entry["working_set_bytes"] / max(1, floor["working_set_bytes"])
    return results


def run(names: list[str], rounds: int, warmup: int, repeats: int, memory_steps: int) -> dict:
    timing = time_steps(names, rounds, warmup, repeats)
    memory = measure_memory(names, memory_steps)
    payload = {"batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH, "optimizer": "AdamW",
               "rounds": rounds, "warmup_steps": warmup, "timed_steps_per_round": repeats,
               "memory_steps": memory_steps,
               "competitors": {name: {**timing[name], "memory": memory[name]}
                               for name in names}}
    write_result("train_step", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="builtin:minilm",
                        help="builtin:minilm (the encoder, default) or a decoder: "
                        "builtin:smollm2 or a local causal LM's folder (decoder_step.py)")
    parser.add_argument("--competitors", default=",".join(COMPETITORS),
                        help="comma-separated names (default: all; the encoder's)")
    parser.add_argument("--levers", default=",".join(decoder_step.LEVERS),
                        help="the decoder's levers to measure (default: all)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default: 7; the decoder's 3)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per round (default: 3; the decoder's 1)")
    parser.add_argument("--memory-steps", type=int, default=None,
                        help="steps of each memory child (default: 3; the decoder's 2)")


def main(args: argparse.Namespace) -> dict:
    if args.model != "builtin:minilm":
        return decoder_step.run(args.model, _levers(args.levers), args.rounds or 3,
                                args.warmup, args.repeats or 1, args.memory_steps or 2)
    args.rounds, args.repeats = args.rounds or 7, args.repeats or 3
    args.memory_steps = args.memory_steps or 3
    names = [n for n in args.competitors.split(",") if n]
    unknown = [n for n in names if n not in COMPETITORS]
    if unknown:
        raise SystemExit(f"unknown competitor(s) {unknown}; known: {list(COMPETITORS)}")
    if "floor" not in names:
        names.insert(0, "floor")
    return run(names, args.rounds, args.warmup, args.repeats, args.memory_steps)


def _levers(text: str) -> list[str]:
    levers = [lever for lever in text.split(",") if lever]
    unknown = [lever for lever in levers if lever not in decoder_step.LEVERS]
    if unknown:
        raise SystemExit(f"unknown lever(s) {unknown}; known: {list(decoder_step.LEVERS)}")
    return levers


if __name__ == "__main__":  # the memory child: python -m benchmarks.step --memory-child NAME
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-child", required=True)
    parser.add_argument("--memory-steps", type=int, default=3)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    print(json.dumps(memory_of(arguments.memory_child, arguments.memory_steps)))
