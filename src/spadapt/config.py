"""`AdapterConfig`: the one dataclass that describes an adapter, validated, with a JSON round trip.

Every field has a default and its help text in its metadata (`described`). `density` is
always the fraction of an adapter's weights that are *kept* (1.0 = dense). Validation happens
in `__post_init__`, so a config that exists is a config that makes sense; errors name the
field and the allowed values.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from .errors import SpadaptError
from .helptext import described

METHOD_NAMES = ("bottleneck", "sparse_delta")
PLACEMENTS = ("pfeiffer", "houlsby", "parallel", "post_ln")
SCORER_NAMES = ("random", "magnitude", "snip", "grasp", "fisher", "synflow")
SCHEDULE_NAMES = ("init", "gradual", "learned", "movement", "regrow", "lottery")
BUDGETS = ("global", "layer")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
SAVE_DTYPES = (None, "float32", "float16", "bfloat16")


class ConfigError(SpadaptError):
    """An `AdapterConfig` field has a value that cannot work; the message names the field."""


@dataclass
class AdapterConfig:
    """What to add to a frozen base model and which of its weights to keep."""

    method: str = described(
        "bottleneck", help='"bottleneck" (down→act→up adapter) or "sparse_delta"')
    placement: str = described(
        "pfeiffer", help='bottleneck only: "pfeiffer" (after the FFN) | "houlsby" (after '
        'attention and FFN) | "parallel" (beside the FFN) | "post_ln" (after the FFN block\'s '
        "LayerNorm in post-LN encoders such as BERT; as pfeiffer in pre-LN decoders)")
    bottleneck: int = described(
        64, help="bottleneck width r of the dense adapter (before large_sparse widening)")
    density: float = described(
        1.0, help="fraction of the adapter's weights that are KEPT, in (0, 1]")
    scorer: str = described(
        "random", help="which weights to keep: random|magnitude|snip|grasp|fisher|synflow")
    schedule: str = described(
        "init", help="when masks are chosen: init|gradual|learned|movement|regrow|lottery "
        "(bottleneck), init|regrow|lottery (sparse_delta)")
    budget: str = described(
        "global", help='top-k over all tensors ("global") or per tensor ("layer")')
    large_sparse: bool = described(
        False, help="widen the bottleneck by 1/density at the same non-zero budget")
    activation: str = described("relu", help="bottleneck non-linearity")
    parallel_scaling: float = described(
        4.0, help="scale s of a parallel adapter's output (He et al. 2022)")
    target_modules: list[str] | None = described(
        None, help="module-name regexes; None = the architecture table")
    modules_to_save: list[str] | None = described(
        None, help="head modules trained densely and saved; None = auto")
    init_std: float = described(
        1e-2, help="std of the down-projection init (and of the scoring probe for up)")
    seed: int = described(
        0, help="seeds weight init and the random scorer, so masks are reproducible")
    l0_lambda: float = described(
        0.1, help='"learned": weight of the L0 penalty (expected fraction of open gates)')
    l0_beta: float = described(2.0 / 3.0, help='"learned": hard-concrete temperature')
    prune_start: float = described(
        0.1, help='"gradual"/"movement": fraction of training before pruning starts')
    prune_end: float = described(
        0.7, help='"gradual"/"movement"/"learned"/"regrow": fraction of training when the '
        'final density is reached (the rest fine-tunes under that mask); "lottery": the '
        "dense phase's share of training (LT-SFT: 0.5)")
    prune_every: int = described(10, help='"gradual"/"movement": steps between mask updates')
    regrow_every: int = described(
        20, help="schedule 'regrow': optimizer steps between drops and regrowths of positions")
    regrow_fraction: float = described(
        0.3, help="schedule 'regrow': share of each delta's positions replaced at the first "
        "regrowth, decaying (cosine) to 0 at prune_end")
    dense_lr_scale: float = described(
        0.01, help="schedule 'lottery', sparse_delta: the dense phase's learning rate as a "
        "fraction of the training rate (dense fine-tuning wants about 1/100 of a sparse "
        "delta's rate: 1e-4 against 1e-2 in the shipped recipes)")
    synflow_iterations: int = described(20, help='"synflow": pruning rounds (Tanaka et al. 2020)')
    score_batches: int = described(
        4, help="snip/grasp/fisher: calibration batches scored (the first this many given to "
        "attach; `spadapt poc` and `train` draw this many batches of the run's batch size "
        "from the training rows)")
    save_dtype: str | None = described(
        None, help="dtype of stored values: None = the adapter's own dtype")
    labels: list[str] = described(default_factory=list, help="class names of a classification head")

    def __post_init__(self) -> None:
        self._check_choice("method", METHOD_NAMES)
        self._check_choice("placement", PLACEMENTS)
        self._check_choice("scorer", SCORER_NAMES)
        self._check_choice("schedule", SCHEDULE_NAMES)
        self._check_choice("budget", BUDGETS)
        self._check_choice("activation", ACTIVATIONS)
        self._check_choice("save_dtype", SAVE_DTYPES)
        if isinstance(self.density, bool) or not isinstance(self.density, int | float):
            raise ConfigError(f"density must be a number in (0, 1], got {self.density!r}")
        if not (0.0 < float(self.density) <= 1.0) or math.isnan(self.density):
            raise ConfigError(
                f"density is the fraction of weights KEPT and must be in (0, 1], got {self.density}"
            )
        self.density = float(self.density)
        if not isinstance(self.bottleneck, int) or self.bottleneck < 1:
            raise ConfigError(f"bottleneck must be a positive integer, got {self.bottleneck!r}")
        if not 0.0 <= self.prune_start < self.prune_end <= 1.0:
            raise ConfigError(
                "prune_start and prune_end must satisfy 0 <= prune_start < prune_end <= 1, "
                f"got {self.prune_start} and {self.prune_end}"
            )
        if self.prune_every < 1 or self.synflow_iterations < 1 or self.score_batches < 1:
            raise ConfigError("prune_every, synflow_iterations and score_batches must be >= 1")
        if self.l0_lambda < 0 or self.l0_beta <= 0:
            raise ConfigError("l0_lambda must be >= 0 and l0_beta > 0")
        if not 0.0 < self.dense_lr_scale <= 1.0 or math.isnan(self.dense_lr_scale):
            raise ConfigError(f"dense_lr_scale must be in (0, 1], got {self.dense_lr_scale}")
        if self.regrow_every < 1 or not 0.0 < self.regrow_fraction < 1.0:
            raise ConfigError("regrow_every must be >= 1 and regrow_fraction in (0, 1), got "
                              f"{self.regrow_every} and {self.regrow_fraction}")
        if self.method == "sparse_delta":
            if self.schedule not in ("init", "regrow", "lottery"):
                raise ConfigError(
                    f"schedule {self.schedule!r} is not available for sparse_delta: its positions "
                    "are chosen at init and stay (schedule='init'), move (schedule='regrow'), "
                    "or are chosen after a dense phase (schedule='lottery')"
                )
            if self.scorer == "synflow":
                raise ConfigError(
                    "scorer 'synflow' needs a chain of adapter weights and is only available for "
                    "method='bottleneck'; use random, magnitude, snip or grasp for sparse_delta"
                )
            if self.large_sparse:
                raise ConfigError("large_sparse widens a bottleneck; it has no meaning for "
                                  "sparse_delta")
        elif self.schedule == "regrow" and self.density >= 1.0:
            raise ConfigError("schedule 'regrow' moves the kept entries of a bottleneck's masks; "
                              "set density < 1 (the fraction kept), or schedule 'init' for a "
                              "dense adapter")
        if self.schedule == "gradual" and self.scorer != "magnitude":
            raise ConfigError(
                "schedule 'gradual' prunes by the magnitude of the trained weights: "
                f"set scorer='magnitude' (got {self.scorer!r})"
            )
        chooses_own = self.schedule in ("learned", "movement") or (
            self.schedule == "lottery" and self.method == "bottleneck")
        if chooses_own and self.scorer != "random":
            raise ConfigError(
                f"schedule {self.schedule!r} chooses its own masks; leave scorer='random' "
                f"(got {self.scorer!r})"
            )
        for name in ("target_modules", "modules_to_save"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, str) or not all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"{name} must be a list of strings, got {value!r}")

    def _check_choice(self, name: str, allowed: tuple) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")

    @property
    def effective_bottleneck(self) -> int:
        """Bottleneck width actually built: r, or round(r / density) with `large_sparse`."""
        if self.large_sparse:
            return max(1, round(self.bottleneck / self.density))
        return self.bottleneck

    @property
    def is_sparse(self) -> bool:
        """Whether the adapter keeps only part of its weights (now or by the end of training)."""
        return self.density < 1.0 or self.method == "sparse_delta"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterConfig:
        """Build from a dict; unknown keys are an error that names them (no silent drops)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown AdapterConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AdapterConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"adapter config is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError("adapter config JSON must be an object")
        return cls.from_dict(data)
