"""Where adapters go in each architecture family: the `ARCHITECTURES` registry.

A family is one `ArchitectureSpec` entry: which `config.model_type` values belong to it, which
module-name patterns take a bottleneck adapter for each placement (and how the adapter joins
that module: after its output, beside it, or beside it through the residual argument), which
linear layers a `sparse_delta` targets, and which head modules a task model adds. A new family
is one more entry; nothing else changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from .errors import SpadaptError

# How a bottleneck adapter joins the module it wraps (x = the module's input, f = the module):
#   "after":            y = f(x) + A(f(x))                 serial adapter on the module's output
#   "beside":           y = f(x) + s * A(x)                parallel adapter on the module's input
#   "beside_residual":  f(h, r) -> f(h, r + s * A(r))      parallel adapter where f adds the
#                                                          block's input r as a residual (BERT)
JOIN_MODES = ("after", "beside", "beside_residual")


class ArchitectureError(SpadaptError):
    """The base model's architecture is unknown or its modules do not match the table."""


@dataclass(frozen=True)
class Site:
    """One kind of place a bottleneck adapter goes: a module-name regex and how it joins."""

    pattern: str  # regex matched (re.search) against the full module name, anchored with $
    join: str  # one of JOIN_MODES


@dataclass(frozen=True)
class ArchitectureSpec:
    """Adapter targets of one architecture family."""

    name: str  # family name shown in errors
    model_types: tuple[str, ...]  # config.model_type values in the family
    placements: dict[str, tuple[Site, ...]]  # bottleneck placement -> sites
    linear_targets: str  # regex of the linear layers a sparse_delta adapts
    heads: tuple[str, ...]  # top-level module names of task heads (trained densely, saved)


_LAYER = r"(?:^|\.)layers?\.\d+\."  # "...layer.3." (BERT) or "...layers.3." (Llama)

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "bert": ArchitectureSpec(
        name="BERT-like encoder",
        model_types=("bert", "roberta", "xlm-roberta", "camembert", "electra"),
        placements={
            "pfeiffer": (Site(_LAYER + r"output\.dense$", "after"),),
            "houlsby": (
                Site(_LAYER + r"attention\.output\.dense$", "after"),
                Site(_LAYER + r"output\.dense$", "after"),
            ),
            "parallel": (Site(_LAYER + r"output$", "beside_residual"),),
            # after the FFN block's closing LayerNorm: the adapter reads the normalised
            # residual stream, where AdapterHub's Pfeiffer adapter reads it
            "post_ln": (Site(_LAYER + r"output$", "after"),),
        },
        linear_targets=_LAYER + r"(?:attention\.self\.(?:query|key|value)|attention\.output\.dense"
        r"|intermediate\.dense|output\.dense)$",
        heads=("classifier",),
    ),
    "llama": ArchitectureSpec(
        name="Llama-like decoder",
        model_types=("llama", "mistral", "qwen2", "qwen3"),
        placements={
            "pfeiffer": (Site(_LAYER + r"mlp$", "after"),),
            "houlsby": (
                Site(_LAYER + r"self_attn\.o_proj$", "after"),
                Site(_LAYER + r"mlp$", "after"),
            ),
            "parallel": (Site(_LAYER + r"mlp$", "beside"),),
            "post_ln": (Site(_LAYER + r"mlp$", "after"),),  # pre-LN: no LayerNorm closes a block
        },
        linear_targets=_LAYER + r"(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)$",
        heads=("score",),
    ),
    "gpt2": ArchitectureSpec(
        name="GPT-2-like decoder (Conv1D)",
        model_types=("gpt2",),
        placements={
            "pfeiffer": (Site(r"(?:^|\.)h\.\d+\.mlp$", "after"),),
            "houlsby": (
                Site(r"(?:^|\.)h\.\d+\.attn\.c_proj$", "after"),
                Site(r"(?:^|\.)h\.\d+\.mlp$", "after"),
            ),
            "parallel": (Site(r"(?:^|\.)h\.\d+\.mlp$", "beside"),),
            "post_ln": (Site(r"(?:^|\.)h\.\d+\.mlp$", "after"),),  # pre-LN, as Llama
        },
        linear_targets=r"(?:^|\.)h\.\d+\.(?:attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$",
        heads=("score",),
    ),
}


def architecture_of(model: nn.Module) -> ArchitectureSpec | None:
    """The family of `model` from its `config.model_type`, or None when it is not in the table."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for spec in ARCHITECTURES.values():
        if model_type in spec.model_types:
            return spec
    return None


def unknown_architecture_error(model: nn.Module) -> ArchitectureError:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    families = "; ".join(
        f"{spec.name}: {', '.join(spec.model_types)}" for spec in ARCHITECTURES.values()
    )
    return ArchitectureError(
        f"architecture {model_type!r} ({type(model).__name__}) is not in spadapt's table. "
        f"Supported families — {families}. For another model, name the modules by hand with "
        "AdapterConfig(target_modules=[regex, ...]): for method='bottleneck' the modules whose "
        "output gets an adapter (e.g. r'layers\\.\\d+\\.mlp$'), for method='sparse_delta' the "
        "nn.Linear layers to adapt; and modules_to_save=[...] for a new task head."
    )


def find_modules(model: nn.Module, pattern: str) -> list[str]:
    """Names of the modules of `model` whose full name matches `pattern` (re.search)."""
    regex = re.compile(pattern)
    return [name for name, _ in model.named_modules() if name and regex.search(name)]


def head_modules(model: nn.Module, explicit: list[str] | None) -> list[str]:
    """Top-level head modules to train densely and save: `explicit`, or the family's heads."""
    if explicit is not None:
        children = dict(model.named_children())
        missing = [name for name in explicit if name not in children]
        if missing:
            raise ArchitectureError(
                f"modules_to_save {missing} are not top-level modules of {type(model).__name__}; "
                f"its top-level modules are {sorted(children)}"
            )
        return list(explicit)
    spec = architecture_of(model)
    if spec is None:
        return []
    children = dict(model.named_children())
    return [name for name in spec.heads if name in children]
