"""What position selection costs a sparse delta: Fisher scores at attach, regrowth in training.

Five competitors on MiniLM in one process, timed interleaved (common.interleaved): the
frozen-base floor, the `sparse_delta` recipe (magnitude at init), the same with `fisher` scores
on 16 calibration batches (512 rows) and on the default 4 (128 rows), and with schedule
`regrow` every 20 steps. One timed call
is one regrowth cycle, 20 training steps on the same real batch (32 × 64 tokens), so a regrow
competitor's cycle holds its one regrowth step with the 19 plain ones. Regrowths stop at
`prune_end` (default 0.7 of the run), so over a run the regrow competitor's cycles are of two
kinds: those with a regrowth (its own cycle) and those after `prune_end` (the plain
sparse_delta's cycle, the same model without regrowth); the run average weighs them by how
many of each the schedule gives that run (`RegrowSchedule.fraction`). Selection at attach is
timed once per competitor (building the model from a copy of the base, scoring included; the
floor's build, copy and head only, is subtracted) and reported amortized over a run of 256
steps (the accuracy benchmark's) and over one `--budget standard` epoch of Rotten Tomatoes
(319 steps).

    python -m benchmarks selection [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

from spadapt.config import AdapterConfig
from spadapt.masks.schedules import SCHEDULES

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
REGROW = {"schedule": "regrow", "regrow_every": CYCLE_STEPS, "regrow_fraction": 0.3}
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
                            recipe_builder("sparse_delta", **REGROW)),
}
PLAIN_CYCLE = {"sparse_delta_regrow": "sparse_delta"}  # a regrow competitor -> its model
#                                                      without regrowth (cycles after prune_end)


def regrowth_steps(steps: int) -> int:
    """How many of a run's `steps` optimizer steps regrow, under the benchmark's settings and
    the default prune_end (the schedule's own rule, steps 1..steps)."""
    config = AdapterConfig(method="sparse_delta", **REGROW)
    schedule = SCHEDULES["regrow"](config, {})
    return sum(schedule.fraction(step, steps) > 0 for step in range(1, steps + 1))


def _timed_trainee(name: str, base, calibration: list[dict]) -> tuple[Trainee, float]:
    """(trainee, seconds it took to build: copying the base, scoring included)."""
    started = time.perf_counter()
    trainee = trainee_from(name, BUILDERS[name][1], base, calibration)
    return trainee, time.perf_counter() - started


def run_seconds(name: str, medians: dict[str, float], steps: int) -> float:
    """Training seconds of a `steps`-step run from the median cycles: a regrow competitor's
    cycles with a regrowth at its own cost, the rest at its plain model's."""
    if name not in PLAIN_CYCLE:
        return medians[name] / CYCLE_STEPS * steps
    with_regrowth = regrowth_steps(steps)  # one regrowth per cycle of CYCLE_STEPS steps
    return (with_regrowth * medians[name]
            + (steps / CYCLE_STEPS - with_regrowth) * medians[PLAIN_CYCLE[name]])


def run(rounds: int) -> dict:
    base = load_base()
    calibration = [base.batch(i) for i in range(FISHER_BATCHES)]
    batch = base.batch(0)
    names = list(BUILDERS)
    built = {name: _timed_trainee(name, base.model, calibration) for name in names}
    trainees = {name: trainee for name, (trainee, _) in built.items()}
    series = interleaved({name: (lambda t=t: [t.step(batch) for _ in range(CYCLE_STEPS)])
                          for name, t in trainees.items()}, rounds=rounds, warmup=0, repeats=1)
    medians = {name: series[name].summary()["median"] for name in names}
    results = {}
    for name in names:
        cycle = series[name].summary()
        build_seconds = built[name][1]
        extra_build = build_seconds - built["floor"][1]
        results[name] = {
            "description": BUILDERS[name][0],
            "cycle_seconds": cycle, "step_seconds": cycle["median"] / CYCLE_STEPS,
            "ratio_to_floor": ratio_summary(series[name], series["floor"]),
            "build_seconds": build_seconds,
            "ratio_to_floor_with_selection": {
                label: (run_seconds(name, medians, steps) + extra_build)
                / (medians["floor"] / CYCLE_STEPS * steps)
                for label, steps in RUN_LENGTHS.items()},
        }
        if name in PLAIN_CYCLE:
            results[name]["regrowth_steps"] = {label: regrowth_steps(steps)
                                               for label, steps in RUN_LENGTHS.items()}
    payload = {"batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH,
               "optimizer": "AdamW", "rounds": rounds, "cycle_steps": CYCLE_STEPS,
               "competitors": results}
    write_result("selection_cost", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)


def main(args: argparse.Namespace) -> dict:
    return run(args.rounds)
