"""Recipes: YAML files that name a method and its settings (`src/spadapt/recipes/*.yaml`).

A recipe has `name`, `description`, `kind` ("spadapt" | "lora" | "shira" | "full" | "base"), an
`adapter` section (AdapterConfig fields), a `lora` section (PEFT LoraConfig fields), a `shira`
section (PEFT ShiraConfig fields, or `density`) and a `train` section (TrainConfig fields), plus
optional `data` and `model`. Kind "base" trains nothing: the untouched base, the PoC's "before".
`--set section.key=value` overrides any field; values are parsed as YAML (`0.01`, `true`,
`[query, value]`) and converted to each field's type by pydantic (`spadapt.validation`), so
`1e-3` is a float.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import AdapterConfig, ConfigError
from .errors import SpadaptError
from .train.config import TrainConfig
from .validation import coerce_fields

RECIPE_DIR = Path(__file__).parent / "recipes"
KINDS = ("spadapt", "lora", "shira", "full", "base")


class RecipeError(SpadaptError):
    """A recipe file or override that cannot work."""


@dataclass
class Recipe:
    name: str  # short method name, used for output folders and reports
    description: str  # one line shown in reports
    # "spadapt" (an AdapterConfig), "lora" (PEFT LoRA), "shira" (PEFT SHiRA), "full" (all
    # weights) or "base" (nothing trained: the base as it is)
    kind: str
    adapter: dict = field(default_factory=dict)  # AdapterConfig fields (kind "spadapt")
    lora: dict = field(default_factory=dict)  # peft.LoraConfig fields (kind "lora")
    shira: dict = field(default_factory=dict)  # peft.ShiraConfig fields or density ("shira")
    train: dict = field(default_factory=dict)  # TrainConfig fields
    data: str | None = None  # default training data for `spadapt train`
    model: str | None = None  # default base model for `spadapt train`

    def adapter_config(self, **extra) -> AdapterConfig:
        values = {**self.adapter, **extra}
        known = {f.name for f in dataclasses.fields(AdapterConfig)}
        converted = coerce_fields(AdapterConfig, {k: v for k, v in values.items() if k in known},
                                  ConfigError)
        return AdapterConfig.from_dict({**values, **converted})  # names unknown keys

    def train_config(self, **extra) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {**self.train, **extra}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RecipeError(f"recipe {self.name!r}: unknown train field(s) {unknown}; "
                              f"known: {sorted(known)}")
        return TrainConfig(**values)


def builtin_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """A builtin recipe by name (e.g. "sparse") or a YAML file, plus `section.key=value`s."""
    path = Path(name_or_path)
    if not path.suffix and (RECIPE_DIR / f"{name_or_path}.yaml").exists():
        path = RECIPE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise RecipeError(f"recipe {str(name_or_path)!r} not found: give a YAML file or one of "
                          f"{builtin_recipes()}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: invalid YAML ({error})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping")
    for override in overrides or []:
        _apply_override(data, override, path)
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{path}: unknown recipe key(s) {unknown}; known: {sorted(known)}")
    data.setdefault("name", path.stem)
    data.setdefault("description", data["name"])
    if data.get("kind") not in KINDS:
        raise RecipeError(f"{path}: kind must be one of {list(KINDS)}, got {data.get('kind')!r}")
    recipe = Recipe(**data)
    if recipe.kind == "spadapt":
        recipe.adapter_config()  # validate now, with the file named in errors
    recipe.train_config()
    return recipe


def _apply_override(data: dict, override: str, path: Path) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {override!r}: expected section.key=value")
    value = yaml.safe_load(raw)
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise RecipeError(f"--set {override!r}: {part!r} in {path} is not a section")
    target[parts[-1]] = value
