"""What position selection costs a sparse delta: Fisher scores at attach, regrowth in training.

Five competitors on MiniLM in one process, timed interleaved (common.interleaved): the
frozen-base floor, the `sparse_delta` recipe (magnitude at init), the same with `fisher` scores
on 16 calibration batches (512 rows) and on the default 4 (128 rows), and with schedule
`regrow` every 20 steps. One timed call
is one regrowth cycle, 20 training steps on the same real batch (32 × 64 tokens), so a regrow
competitor's figure holds its one regrowth step with the 19 plain ones: the average over a
run. Selection at attach is timed once per competitor (building the model from a copy of the
base, scoring included; the floor's build, copy and head only, is subtracted) and reported
amortized over a run of 256 steps (the accuracy benchmark's) and over one `--budget standard`
epoch of Rotten Tomatoes (319 steps).

    python -m benchmarks selection [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

from .common import (
    BATCH_SIZE,
    SEQUENCE_LENGTH,
    interleaved,
    load_base,
    ratio_summary,
    write_result,
)
from .competitors import Trainee, build_floor, recipe_builder, trainee_from

CYCLE_STEPS = 20  # the regrow variant's regrow_every: one timed call is one cycle
FISHER_BATCHES = 16  # 512 calibration rows
RUN_LENGTHS = {"accuracy benchmark (256 steps)": 256,
               "standard budget, one Rotten Tomatoes epoch (319 steps)": 319}
BUILDERS = {  # name -> (description, builder(base, calibration batches))
    "floor": ("frozen-base floor", build_floor),
    "sparse_delta": ("sparse_delta recipe (density 0.01, magnitude at init)",
                     recipe_builder("sparse_delta")),
    "sparse_delta_fisher": ("sparse_delta, Fisher scores on 512 rows at init",
                            recipe_builder("sparse_delta", scorer="fisher",
                                           score_batches=FISHER_BATCHES)),
    "sparse_delta_fisher_128": ("sparse_delta, Fisher scores on 128 rows at init (the "
                                "default score_batches, 4)",
                                recipe_builder("sparse_delta", scorer="fisher",
                                               score_batches=4)),
    "sparse_delta_regrow": ("sparse_delta, magnitude at init, regrow every 20 steps (30%)",
                            recipe_builder("sparse_delta", schedule="regrow",
                                           regrow_every=CYCLE_STEPS, regrow_fraction=0.3)),
}


def _timed_trainee(name: str, base, calibration: list[dict]) -> tuple[Trainee, float]:
    """(trainee, seconds it took to build: copying the base, scoring included)."""
    started = time.perf_counter()
    trainee = trainee_from(name, BUILDERS[name][1], base, calibration)
    return trainee, time.perf_counter() - started


def run(rounds: int) -> dict:
    base = load_base()
    calibration = [base.batch(i) for i in range(FISHER_BATCHES)]
    batch = base.batch(0)
    names = list(BUILDERS)
    built = {name: _timed_trainee(name, base.model, calibration) for name in names}
    trainees = {name: trainee for name, (trainee, _) in built.items()}
    series = interleaved({name: (lambda t=t: [t.step(batch) for _ in range(CYCLE_STEPS)])
                          for name, t in trainees.items()}, rounds=rounds, warmup=0, repeats=1)
    floor_cycle = series["floor"].summary()["median"]
    results = {}
    for name in names:
        cycle = series[name].summary()
        build_seconds = built[name][1]
        extra_build = build_seconds - built["floor"][1]
        step = cycle["median"] / CYCLE_STEPS
        results[name] = {
            "description": BUILDERS[name][0],
            "cycle_seconds": cycle, "step_seconds": step,
            "ratio_to_floor": ratio_summary(series[name], series["floor"]),
            "build_seconds": build_seconds,
            "ratio_to_floor_with_selection": {
                label: (step * steps + extra_build) / (floor_cycle / CYCLE_STEPS * steps)
                for label, steps in RUN_LENGTHS.items()},
        }
    payload = {"batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH,
               "optimizer": "AdamW", "rounds": rounds, "cycle_steps": CYCLE_STEPS,
               "competitors": results}
    write_result("selection_cost", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)


def main(args: argparse.Namespace) -> dict:
    return run(args.rounds)
