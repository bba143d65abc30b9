"""The PEFT methods a comparison trains beside spadapt's: LoRA and SHiRA, built on a base.

LoRA targets the recipe's module names, or every linear layer when none of them is in the base
(the builtin recipe names BERT's). SHiRA targets the linear layers spadapt's `sparse_delta`
adapts (`arch.linear_targets`), with PEFT's r set from a `density` so that both keep the same
share of those weights. A classifier's new head is trained too (PEFT's modules_to_save).
"""

from __future__ import annotations

import re

from torch import nn

from .arch import architecture_of
from .quantize import quiet_torchao


def lora_model(base: nn.Module, settings: dict, classifier: bool) -> nn.Module:
    with quiet_torchao():  # PEFT imports torchao when it is installed
        from peft import LoraConfig, get_peft_model

    settings = dict(settings)
    names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    if not set(settings.get("target_modules") or []) & names:
        settings["target_modules"] = "all-linear"  # the recipe's names are another family's
    task_type = "SEQ_CLS" if classifier else "CAUSAL_LM"
    return get_peft_model(base, LoraConfig(task_type=task_type, **settings))


def linear_targets_regex(base: nn.Module) -> str:
    """The linear layers sparse_delta adapts, as a pattern PEFT full-matches to module names."""
    return ".*" + architecture_of(base).linear_targets


def shira_rank(base: nn.Module, density: float) -> int:
    """SHiRA's r (r·(in+out) values per layer) closest to `density` of the target weights."""
    pattern = re.compile(linear_targets_regex(base))
    layers = [m for n, m in base.named_modules() if pattern.fullmatch(n)]
    target = density * sum(m.weight.numel() for m in layers)
    per_rank = sum(m.in_features + m.out_features for m in layers)
    return max(1, round(target / per_rank))


def shira_model(base: nn.Module, settings: dict, classifier: bool, seed: int) -> nn.Module:
    with quiet_torchao():
        from peft import ShiraConfig, get_peft_model

    settings = dict(settings)
    density = settings.pop("density", None)
    if density is not None:
        if "r" in settings:
            raise ValueError("a shira recipe sets density or r, not both")
        settings["r"] = shira_rank(base, float(density))
    settings.setdefault("random_seed", seed)
    settings.setdefault("target_modules", linear_targets_regex(base))
    task_type = "SEQ_CLS" if classifier else "CAUSAL_LM"
    return get_peft_model(base, ShiraConfig(task_type=task_type, **settings))
