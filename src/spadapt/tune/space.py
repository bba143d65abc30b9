"""The search space of `spadapt tune`, and the non-zero budget every point of it keeps.

A point is a method and its settings (Optuna parameters, named per method so that each keeps
one distribution), plus `budget_share`: the share of the allowed trained non-zeros it uses.
The density follows from the share, so every point the sampler proposes fits the budget by
construction, and none is trained only to be thrown away. The counts behind it come from
building the adapter on the base (`BudgetCounter`): a count is `fixed + density × maskable`,
fixed being what every density keeps (the classifier head, biases).

The shipped recipes' configurations (`shipped_points`) are the study's first trials, so the
search starts from what the benchmarks know.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..errors import SpadaptError
from ..recipe import Recipe, load_recipe

METHODS = ("bottleneck", "sparse_delta")
PLACEMENTS = ("pfeiffer", "houlsby", "parallel", "post_ln")
BOTTLENECK_WIDTH = (8, 256)  # log-uniform integer range of the bottleneck width
BOTTLENECK_SCORERS = ("random", "magnitude", "snip")
BOTTLENECK_SCHEDULES = ("init", "regrow")
DELTA_SCORERS = ("magnitude", "snip", "fisher")
DELTA_SCHEDULES = ("init", "regrow", "lottery")
DELTA_BUDGETS = ("global", "layer")
LEARNING_RATES = {"bottleneck": (1e-4, 3e-2), "sparse_delta": (1e-3, 5e-2)}  # log-uniform
BUDGET_SHARE = (0.1, 1.0)  # log-uniform share of --max-nonzero a point uses
LOTTERY_DENSE_SHARE = 0.5  # prune_end of a lottery point: the recipe's dense first half
SHIPPED = ("sparse", "sparse_delta", "lottery")  # recipes enqueued as the first trials
MOST_REGROW_DENSITY = 0.95  # regrow moves kept entries: some must be left out
COUNT_DENSITIES = (0.01, 0.02)  # densities the counter builds to solve fixed + d × maskable


class TuneError(SpadaptError):
    """A tuning option that cannot work."""


def parse_max_nonzero(text: str, base_parameters: int) -> int:
    """'0.5%' -> that share of the base's parameters; '100000' -> a count."""
    value = str(text).strip().replace("_", "").replace(",", "")
    try:
        count = float(value[:-1]) / 100 * base_parameters if value.endswith("%") else \
            float(value)
    except ValueError:
        raise TuneError(f"--max-nonzero must be a share like 0.5% or a count like 100000, "
                        f"got {text!r}") from None
    if not count >= 1:
        raise TuneError(f"--max-nonzero must allow at least one value, got {text!r}")
    return int(count)


def suggest(trial) -> tuple[dict, float]:
    """(adapter settings and "learning_rate", budget_share) for an Optuna trial."""
    method = trial.suggest_categorical("method", METHODS)
    low, high = LEARNING_RATES[method]
    if method == "bottleneck":
        settings = {
            "method": "bottleneck",
            "placement": trial.suggest_categorical("bottleneck.placement", PLACEMENTS),
            "bottleneck": trial.suggest_int("bottleneck.width", *BOTTLENECK_WIDTH, log=True),
            "scorer": trial.suggest_categorical("bottleneck.scorer", BOTTLENECK_SCORERS),
            "schedule": trial.suggest_categorical("bottleneck.schedule", BOTTLENECK_SCHEDULES),
        }
    else:
        settings = {
            "method": "sparse_delta",
            "scorer": trial.suggest_categorical("sparse_delta.scorer", DELTA_SCORERS),
            "schedule": trial.suggest_categorical("sparse_delta.schedule", DELTA_SCHEDULES),
            "budget": trial.suggest_categorical("sparse_delta.budget", DELTA_BUDGETS),
        }
        if settings["schedule"] == "lottery":
            settings["prune_end"] = LOTTERY_DENSE_SHARE
    settings["learning_rate"] = trial.suggest_float(f"{method}.learning_rate", low, high,
                                                    log=True)
    return settings, trial.suggest_float("budget_share", *BUDGET_SHARE, log=True)


def _shape_key(settings: dict) -> tuple:
    """What a count depends on besides the density."""
    return (settings["method"], settings.get("placement"), settings.get("bottleneck"),
            settings.get("budget", "global"))


class BudgetCounter:
    """Trained non-zeros of configurations on one base, from two builds per shape (cached)."""

    def __init__(self, base: nn.Module, labels: list[str] | None) -> None:
        self.base = base  # never modified: each build adapts a copy
        self.labels = labels
        self._lines: dict[tuple, tuple[float, float]] = {}

    def count(self, settings: dict, density: float) -> int:
        """Exact trained non-zeros of `settings` at `density` (a build, scorer random)."""
        from ..config import AdapterConfig
        from ..model import attach

        adapter = {k: v for k, v in settings.items() if k in ("method", "placement",
                                                             "bottleneck", "budget")}
        config = AdapterConfig(**adapter, density=density, scorer="random",
                               labels=list(self.labels) if self.labels else None)
        with torch.no_grad():
            model = attach(copy.deepcopy(self.base), config)
        return model.parameter_report()["nonzero"]

    def line(self, settings: dict) -> tuple[float, float]:
        """(fixed, maskable): count(d) ≈ fixed + d × maskable."""
        key = _shape_key(settings)
        if key not in self._lines:
            low, high = (self.count(settings, d) for d in COUNT_DENSITIES)
            maskable = (high - low) / (COUNT_DENSITIES[1] - COUNT_DENSITIES[0])
            self._lines[key] = (low - COUNT_DENSITIES[0] * maskable, maskable)
        return self._lines[key]

    def density_for(self, settings: dict, nonzero: float) -> float | None:
        """The density whose count is about `nonzero` (at most 1); None if even the fixed
        part does not fit."""
        fixed, maskable = self.line(settings)
        if nonzero <= fixed + 1 or maskable <= 0:
            return None
        most = MOST_REGROW_DENSITY if settings.get("schedule") == "regrow" else 1.0
        return min(most, (nonzero - fixed) / maskable)


def tuned_recipe(settings: dict, density: float, train: dict) -> Recipe:
    """The recipe of one point: its adapter settings at `density`, trained as `train` says."""
    adapter = {k: v for k, v in settings.items() if k != "learning_rate"}
    adapter["density"] = round(density, 6)
    return Recipe(name="tuned", description=f"Found by spadapt tune: {in_words(settings, density)}",
                  kind="spadapt", adapter=adapter,
                  train={**train, "learning_rate": settings["learning_rate"]})


def in_words(settings: dict, density: float) -> str:
    """A point's settings in one line: "bottleneck r=64 at post_ln, snip, schedule init, ..."."""
    what = (f"bottleneck r={settings['bottleneck']} at {settings['placement']}"
            if settings["method"] == "bottleneck" else
            f"sparse delta ({settings['budget']} budget)")
    return (f"{what}, scorer {settings['scorer']}, schedule {settings['schedule']}, density "
            f"{density:.3g}, learning rate {settings['learning_rate']:.2g}")


def shipped_points(counter: BudgetCounter, max_nonzero: int,
                   load: Callable[[str], Recipe] = load_recipe) -> list[dict]:
    """Optuna parameters of the shipped recipes that fit the budget, to enqueue first."""
    points = []
    for name in SHIPPED:
        recipe = load(name)
        adapter = recipe.adapter
        method = adapter["method"]
        settings = {"method": method, **{k: adapter.get(k) for k in ("placement", "bottleneck",
                                                                      "budget") if k in adapter}}
        if method == "bottleneck":
            settings.setdefault("placement", "pfeiffer")
        nonzero = counter.count(settings, adapter["density"])
        share = nonzero / max_nonzero
        low, high = LEARNING_RATES[method]
        rate = recipe.train.get("learning_rate")
        if share > BUDGET_SHARE[1] or rate is None or not low <= rate <= high:
            continue
        params = {"method": method, "budget_share": max(share, BUDGET_SHARE[0]),
                  f"{method}.learning_rate": rate}
        if method == "bottleneck":
            params.update({"bottleneck.placement": settings["placement"],
                           "bottleneck.width": adapter["bottleneck"],
                           "bottleneck.scorer": adapter.get("scorer", "random"),
                           "bottleneck.schedule": adapter.get("schedule", "init")})
        else:
            params.update({"sparse_delta.scorer": adapter.get("scorer", "random"),
                           "sparse_delta.schedule": adapter.get("schedule", "init"),
                           "sparse_delta.budget": adapter.get("budget", "global")})
        if all(_within(key, value) for key, value in params.items()):
            points.append(params)
    return points


def _within(key: str, value) -> bool:
    """Whether an enqueued value lies in the search space (Optuna would sample otherwise)."""
    choices = {"bottleneck.placement": PLACEMENTS, "bottleneck.scorer": BOTTLENECK_SCORERS,
               "bottleneck.schedule": BOTTLENECK_SCHEDULES, "sparse_delta.scorer": DELTA_SCORERS,
               "sparse_delta.schedule": DELTA_SCHEDULES, "sparse_delta.budget": DELTA_BUDGETS,
               "method": METHODS}
    if key in choices:
        return value in choices[key]
    if key == "bottleneck.width":
        return BOTTLENECK_WIDTH[0] <= value <= BOTTLENECK_WIDTH[1]
    return True
