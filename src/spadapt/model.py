"""`AdaptedModel`: a frozen Hugging Face model with named sparse adapters inside it.

Lifecycle: `attach` plans the sites of a method (`spadapt.methods`), wraps those modules, builds
the adapter modules, chooses masks (scorer + exact budget, `spadapt.masks`) and starts the mask
schedule. Afterwards: add/set/delete adapters, `disable_adapter()`, per-row routing with
`adapter_names=[...]` (`"__base__"` = no adapter) in `forward` and `generate`, merge/unmerge and
unload of sparse deltas, and a parameter report that counts kept values, not dense sizes.
Storage (`spadapt.storage`) is the file format alone: this module hands it tensors and the
facts it records (task, labels, base fingerprint) and loads what it reads into modules it
builds (`add_stored_adapter`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import storage
from .arch import head_modules
from .config import AdapterConfig
from .errors import SpadaptError
from .fingerprint import base_fingerprint, check_fingerprint
from .masks import SCHEDULES, SCORERS, ScoreContext, topk_masks
from .masks.scorers.row_losses import row_losses
from .methods import (
    METHODS,
    HeadCopy,
    HeadSite,
    Routing,
    SitePlan,
    SiteWrapper,
    SparseDelta,
    SparseDeltaSite,
)
from .names import BASE_NAME, check_adapter_name
from .quantize import quantize_frozen_linears
from .storage import AdapterTask, StoredTensor

KEY_SEPARATOR = "::"  # storage keys: "<site module name>::<local tensor name>"


class AdapterError(SpadaptError):
    """A request about adapters that cannot be honoured (unknown name, merged, wrong method...)."""


def module_table(model: nn.Module) -> dict[str, list[tuple[str, nn.Module]]]:
    """Stable module name -> chain of (path, module) at that name, outermost wrapper first.

    Wrapper segments (".base_layer") are removed from names and adapter internals are skipped,
    so names are the same before and after attaching adapters.
    """
    table: dict[str, list[nn.Module]] = {}
    for name, module in model.named_modules():
        if not name or ".adapters." in f".{name}." or name.endswith(".adapters"):
            continue
        stable = name.replace(".base_layer", "")
        table.setdefault(stable, []).append((name, module))
    return table


def _rows(batch: dict) -> Iterator[dict]:
    """The rows of a batch of model inputs one at a time, each a batch of one."""
    rows = next(len(v) for v in batch.values() if isinstance(v, torch.Tensor))
    for row in range(rows):
        yield {key: value[row : row + 1] if isinstance(value, torch.Tensor) else value
               for key, value in batch.items()}


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, child, module)


class AdaptedModel(nn.Module):
    """A frozen base model plus named adapters; see the module docstring."""

    def __init__(self, base_model: nn.Module) -> None:
        super().__init__()
        self.base_model = base_model
        self.routing = Routing()
        self.configs: dict[str, AdapterConfig] = {}
        self.schedules: dict[str, Any] = {}
        self.merged_adapter: str | None = None
        self._masks_final: dict[str, bool] = {}
        self._fingerprints: dict[tuple[str, ...], dict] = {}
        self.base_quantization = "none"  # "int8" once quantize_base has run
        for parameter in base_model.parameters():
            parameter.requires_grad_(False)

    # Delegation ---------------------------------------------------------------------------
    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    @property
    def active_adapter(self) -> str | None:
        return self.routing.active

    @property
    def adapter_names(self) -> list[str]:
        return list(self.configs)

    # Sites ------------------------------------------------------------------------------------
    def _wrappers(self) -> list[tuple[str, SiteWrapper]]:
        return [(n, m) for n, m in self.base_model.named_modules() if isinstance(m, SiteWrapper)]

    def adapter_modules(self, adapter_name: str) -> list[tuple[SiteWrapper, nn.Module]]:
        """(site wrapper, adapter module) for every site of `adapter_name`."""
        return [(w, w.adapters[adapter_name]) for _, w in self._wrappers()
                if adapter_name in w.adapters]

    def _insert(self, plan: SitePlan, wrapper_type: type, config: AdapterConfig) -> SiteWrapper:
        """The wrapper of `wrapper_type` at `plan.name`, creating (and inserting) it if needed."""
        chain = module_table(self.base_model)[plan.name]
        for _, module in chain:
            if isinstance(module, wrapper_type):
                return module
        # Sparse deltas wrap the linear layer itself; the others wrap the outermost module.
        path = chain[-1][0] if wrapper_type is SparseDeltaSite else chain[0][0]
        wrapper = wrapper_type(self.base_model.get_submodule(path), self.routing, plan, config)
        _set_submodule(self.base_model, path, wrapper)
        return wrapper

    @staticmethod
    def _innermost(module: nn.Module) -> nn.Module:
        while isinstance(module, SiteWrapper):
            module = module.base_layer
        return module

    def _remove_empty_wrappers(self) -> None:
        changed = True
        while changed:
            changed = False
            for name, wrapper in self._wrappers():
                if len(wrapper.adapters) == 0:
                    _set_submodule(self.base_model, name, wrapper.base_layer)
                    changed = True
                    break

    # Adding adapters ----------------------------------------------------------------------------
    def _check_new_name(self, adapter_name: str) -> None:
        check_adapter_name(adapter_name, AdapterError)
        if "." in adapter_name:  # nn.ModuleDict keys cannot hold one
            raise AdapterError(f"invalid adapter name {adapter_name!r} inside a model: '.' "
                               "separates module names there; use letters, digits, '_' or '-'")
        if adapter_name in self.configs:
            raise AdapterError(f"an adapter named {adapter_name!r} already exists")

    def _build(self, adapter_name: str, config: AdapterConfig) -> list[tuple[SiteWrapper, Any]]:
        method = METHODS[config.method]
        table = module_table(self.base_model)
        plans = method.plan(table, self.base_model, config)
        if not plans:
            raise AdapterError(
                f"method {config.method!r} found no modules to adapt in "
                f"{type(self.base_model).__name__} (target_modules={config.target_modules})"
            )
        hidden = getattr(self.base_model.config, "hidden_size", None)
        if config.method == "bottleneck" and not isinstance(hidden, int):
            raise AdapterError("the base model's config has no integer hidden_size")
        built = []
        for plan in plans:
            wrapper = self._insert(plan, method.wrapper, config)
            module = method.build(plan, self._innermost(wrapper), config, hidden)
            wrapper.adapters[adapter_name] = module
            built.append((wrapper, module))
        for head in head_modules(self.base_model, config.modules_to_save):
            wrapper = self._insert(SitePlan(head, "head"), HeadSite, config)
            wrapper.adapters[adapter_name] = HeadCopy(self._innermost(wrapper))
        return built

    def add_adapter(self, adapter_name: str, config: AdapterConfig,
                    calibration: Iterable[dict] | None = None) -> None:
        """Add an adapter (not activated; see `set_adapter`). Masks are chosen now.

        calibration: batches (dicts of model inputs including labels) for snip/grasp scorers.
        """
        self._check_new_name(adapter_name)
        needs_data = SCORERS[config.scorer].needs_data
        if needs_data and scores_at_attach(config) and calibration is None:
            raise AdapterError(
                f"scorer {config.scorer!r} needs calibration batches: "
                "attach(..., calibration=[batch, ...]) with labels in each batch"
            )
        built = self._build(adapter_name, config)
        self.configs[adapter_name] = config
        try:
            self._choose_masks(adapter_name, config, built, calibration)
        except Exception:
            self._forget(adapter_name)
            raise
        self._start_schedule(adapter_name, config)
        self._set_trainable(self.routing.active)

    def _start_schedule(self, adapter_name: str, config: AdapterConfig) -> None:
        weights = {
            f"{wrapper.site_name}{KEY_SEPARATOR}{local}": masked
            for wrapper, module in self.adapter_modules(adapter_name)
            if not isinstance(module, HeadCopy)
            for local, masked in module.masked_weights().items()
        }
        deltas = {f"{wrapper.site_name}{KEY_SEPARATOR}delta": module
                  for wrapper, module in self.adapter_modules(adapter_name)
                  if isinstance(module, SparseDelta)}
        schedule = SCHEDULES[config.schedule](config, weights, deltas)
        schedule.start()
        self.schedules[adapter_name] = schedule
        self._masks_final[adapter_name] = config.schedule == "init"

    def _choose_masks(self, adapter_name: str, config: AdapterConfig,
                      built: list[tuple[SiteWrapper, Any]],
                      calibration: Iterable[dict] | None) -> None:
        if scores_at_attach(config):
            targets, owners = {}, {}
            for wrapper, module in built:
                for local, tensor in module.score_targets(self._innermost(wrapper)).items():
                    key = f"{wrapper.site_name}{KEY_SEPARATOR}{local}"
                    targets[key] = tensor
                    owners[key] = (wrapper, module, local)
            chains = [[f"{w.site_name}{KEY_SEPARATOR}{local}" for local in m.synflow_chain()]
                      for w, m in built if m.synflow_chain()]
            scorer = SCORERS[config.scorer]
            context = ScoreContext(targets=targets, seed=config.seed, density=config.density,
                                   budget=config.budget, chains=chains,
                                   iterations=config.synflow_iterations)
            if scorer.needs_data:
                batches = list(itertools.islice(calibration, config.score_batches))
                context.losses = lambda: self._calibration_losses(adapter_name, batches,
                                                                  scorer.per_example)
                if scorer.per_example and all(hasattr(module, "arm_row_squares")
                                              for _, module in built):
                    context.squared_gradients = lambda: self._row_squared_gradients(
                        adapter_name, batches, built, targets)
            with self._scoring(targets.values() if scorer.needs_data else []):
                scores = scorer(context)
            masks = topk_masks(scores, config.density, config.budget)
            per_module: dict[int, dict[str, torch.Tensor]] = {}
            for key, mask in masks.items():
                wrapper, module, local = owners[key]
                per_module.setdefault(id(module), {})[local] = mask
            for wrapper, module in built:
                module.apply_masks(per_module[id(module)], self._innermost(wrapper))
        for _, module in built:
            module.finish_init()

    @contextlib.contextmanager
    def _scoring(self, targets: Iterable[torch.Tensor]) -> Iterator[None]:
        """Let gradients reach the scored tensors (frozen base weights included), in eval mode."""
        targets = list(targets)
        flags = [t.requires_grad for t in targets]
        was_training = self.base_model.training
        for tensor in targets:
            tensor.requires_grad_(True)
        self.base_model.eval()
        try:
            yield
        finally:
            for tensor, flag in zip(targets, flags, strict=True):
                tensor.requires_grad_(flag)
            self.base_model.train(was_training)

    def _calibration_losses(self, adapter_name: str, calibration: list[dict],
                            per_example: bool = False) -> Iterator[torch.Tensor]:
        """The loss of each calibration batch (of each row of them, with `per_example`)."""
        if not calibration:
            raise AdapterError("calibration data is empty: give at least one batch")
        for index, batch in enumerate(calibration):
            for inputs in _rows(batch) if per_example else [batch]:
                with self._routed(None, route_to=adapter_name):
                    loss = getattr(self.base_model(**inputs), "loss", None)
                if loss is None:
                    raise AdapterError(
                        f"calibration batch {index} gave no loss: include labels in each batch"
                    )
                yield loss

    def _row_squared_gradients(self, adapter_name: str, calibration: list[dict],
                               built: list[tuple[SiteWrapper, Any]],
                               targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Σ over calibration rows of (∂ loss(row) / ∂θ)² for each target of `built` (modules
        with `arm_row_squares`): one forward and one backward per batch, where `row_losses`
        knows the head's per-row loss; one per row otherwise."""
        if not calibration:
            raise AdapterError("calibration data is empty: give at least one batch")
        tensors = list(targets.values())
        for _, module in built:
            module.arm_row_squares()
        try:
            for index, batch in enumerate(calibration):
                with self._routed(None, route_to=adapter_name):
                    output = self.base_model(**batch)
                if getattr(output, "loss", None) is None:
                    raise AdapterError(
                        f"calibration batch {index} gave no loss: include labels in each batch"
                    )
                losses = row_losses(output, batch)
                totals = [losses.sum()] if losses is not None else \
                    self._calibration_losses(adapter_name, [batch], per_example=True)
                for total in totals:  # the probes add each row's squared gradient
                    torch.autograd.grad(total, tensors, allow_unused=True)
        finally:
            sums = {f"{wrapper.site_name}{KEY_SEPARATOR}{local}": value
                    for wrapper, module in built
                    for local, value in module.take_row_squares(
                        self._innermost(wrapper)).items()}
        return sums

    # Activation and routing ---------------------------------------------------------------------
    def _require(self, adapter_name: str) -> AdapterConfig:
        if adapter_name not in self.configs:
            raise AdapterError(
                f"no adapter named {adapter_name!r}; adapters: {sorted(self.configs) or 'none'}"
            )
        return self.configs[adapter_name]

    def set_adapter(self, adapter_name: str) -> None:
        """Make `adapter_name` the active adapter, and the only trainable one."""
        self._require(adapter_name)
        if self.merged_adapter not in (None, adapter_name):
            raise AdapterError(
                f"adapter {self.merged_adapter!r} is merged into the base weights; "
                "unmerge_adapter() before activating another"
            )
        self.routing.active = adapter_name
        self._set_trainable(adapter_name)

    def _set_trainable(self, adapter_name: str | None) -> None:
        for _, wrapper in self._wrappers():
            for name, module in wrapper.adapters.items():
                for parameter in module.parameters():
                    parameter.requires_grad_(name == adapter_name)

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Inside the block the model computes exactly the base model."""
        if self.merged_adapter is not None:
            raise AdapterError(
                f"adapter {self.merged_adapter!r} is merged; unmerge_adapter() to run the base"
            )
        previous = self.routing.disabled
        self.routing.disabled = True
        try:
            yield
        finally:
            self.routing.disabled = previous

    @contextlib.contextmanager
    def _routed(self, adapter_names: list[str] | None, route_to: str | None = None):
        if adapter_names is not None:
            if isinstance(adapter_names, str):
                raise AdapterError("adapter_names must be a list with one name per row")
            unknown = sorted({n for n in adapter_names if n != BASE_NAME} - set(self.configs))
            if unknown:
                raise AdapterError(
                    f"adapter_names has unknown adapter(s) {unknown}; known: "
                    f"{sorted(self.configs)} and {BASE_NAME!r}"
                )
            if self.merged_adapter is not None and set(adapter_names) != {self.merged_adapter}:
                raise AdapterError(
                    f"adapter {self.merged_adapter!r} is merged; per-row routing to other "
                    "adapters needs unmerge_adapter() first"
                )
        previous_active = self.routing.active
        if route_to is not None:
            self.routing.active = route_to
        self.routing.set_rows(adapter_names)
        try:
            yield
        finally:
            self.routing.set_rows(None)
            self.routing.active = previous_active

    def forward(self, *args, adapter_names: list[str] | None = None, **kwargs):
        """The base model's forward; `adapter_names` routes each row (one name per row)."""
        with self._routed(adapter_names):
            return self.base_model(*args, **kwargs)

    def generate(self, *args, adapter_names: list[str] | None = None, **kwargs):
        """`base_model.generate` with the active adapter, or per-row `adapter_names`."""
        with self._routed(adapter_names):
            return self.base_model.generate(*args, **kwargs)

    # Schedules ------------------------------------------------------------------------------------
    def step_schedule(self, step: int, total_steps: int) -> None:
        """Advance the active adapter's mask schedule after optimizer step `step` (1-based)."""
        if self.routing.active in self.schedules:
            self.schedules[self.routing.active].step(step, total_steps)

    def after_optimizer_step(self, optimizer_state: dict) -> None:
        """Let the active adapter's schedule act on the optimizer step just taken, with the
        optimizer's state (called by the hook of `spadapt.masks.keep_pruned_at_zero`)."""
        if self.routing.active in self.schedules:
            self.schedules[self.routing.active].after_optimizer_step(optimizer_state)

    def resume_schedule(self, step: int, total_steps: int) -> None:
        """Tell the active adapter's schedule that training starts (step 0) or resumes after
        optimizer step `step` (a "regrow" schedule re-arms what the next step needs)."""
        if self.routing.active in self.schedules:
            self.schedules[self.routing.active].resume(step, total_steps)

    def regularization_loss(self) -> torch.Tensor | None:
        """The active adapter's regularisation term (L0 for "learned"), or None."""
        if self.routing.active in self.schedules:
            return self.schedules[self.routing.active].regularization()
        return None

    def finalize_masks(self, adapter_name: str | None = None) -> None:
        """Make the masks final at exactly the configured density (end of training)."""
        name = adapter_name or self.routing.active
        self._require(name)
        self.schedules[name].finalize()
        self._masks_final[name] = True

    def install_final_masks(self, adapter_name: str) -> None:
        """Mark a loaded adapter's masks as final (its schedule already ran when it was trained)."""
        self.schedules[adapter_name] = SCHEDULES["init"](self.configs[adapter_name], {}, {})
        self._masks_final[adapter_name] = True
        self._set_trainable(self.routing.active)

    def masks_final(self, adapter_name: str) -> bool:
        return self._masks_final.get(adapter_name, False)

    # Merge / unload / delete ------------------------------------------------------------------
    def _sparse_delta_sites(self, adapter_name: str) -> list[tuple[SparseDeltaSite, Any]]:
        return [(w, m) for w, m in self.adapter_modules(adapter_name)
                if isinstance(w, SparseDeltaSite)]

    def merge_adapter(self, adapter_name: str | None = None) -> None:
        """Add a sparse_delta adapter's values into the base weights (exact; see unmerge)."""
        name = adapter_name or self.routing.active
        config = self._require(name)
        if config.method != "sparse_delta":
            raise AdapterError(
                f"adapter {name!r} is a {config.method} adapter, which adds a non-linear module "
                "and cannot be merged into the base weights; only sparse_delta adapters merge"
            )
        if self.merged_adapter is not None:
            raise AdapterError(f"adapter {self.merged_adapter!r} is already merged")
        if self.base_quantization != "none":
            raise AdapterError(
                f"the base is held {self.base_quantization}-quantized and a merge would have "
                "to re-quantize W + Δ, losing the delta's precision; merge on the unquantized "
                "base instead (the saved adapter is the same file whatever the base's precision)")
        for wrapper, module in self._sparse_delta_sites(name):
            module.merge(wrapper.base_layer)
        self.merged_adapter = name
        self.routing.active = name

    def unmerge_adapter(self) -> None:
        """Restore the base weights bit-exactly from the values saved at merge."""
        if self.merged_adapter is None:
            return
        for wrapper, module in self._sparse_delta_sites(self.merged_adapter):
            module.unmerge(wrapper.base_layer)
        self.merged_adapter = None

    def _forget(self, adapter_name: str) -> None:
        for _, wrapper in self._wrappers():
            if adapter_name in wrapper.adapters:
                del wrapper.adapters[adapter_name]
        self._remove_empty_wrappers()
        self.configs.pop(adapter_name, None)
        self.schedules.pop(adapter_name, None)
        self._masks_final.pop(adapter_name, None)
        if self.routing.active == adapter_name:
            self.routing.active = None

    def delete_adapter(self, adapter_name: str) -> None:
        """Remove an adapter. Unknown or merged adapters raise and change nothing."""
        self._require(adapter_name)
        if self.merged_adapter == adapter_name:
            raise AdapterError(f"adapter {adapter_name!r} is merged; unmerge_adapter() first")
        self._forget(adapter_name)

    def unload(self) -> nn.Module:
        """The base model without any adapter (unmerged first: base weights bit-exact)."""
        self.unmerge_adapter()
        for name in list(self.configs):
            self._forget(name)
        return self.base_model

    def merge_and_unload(self) -> nn.Module:
        """The base model with the active sparse_delta adapter baked into its weights."""
        if self.merged_adapter is None:
            self.merge_adapter()
        self.merged_adapter = None
        for name in list(self.configs):
            self._forget(name)
        return self.base_model

    # Reports and storage ------------------------------------------------------------------------
    def export_adapter(self, adapter_name: str) -> dict[str, StoredTensor]:
        """Every tensor of an adapter as storage keys -> StoredTensor (head tensors included)."""
        config = self._require(adapter_name)
        seeded = config.scorer == "random" and config.schedule == "init"
        out = {}
        for wrapper, module in self.adapter_modules(adapter_name):
            for local, stored in module.export().items():
                if seeded and stored.positions is not None and not isinstance(module, HeadCopy):
                    stored.seeded = True
                out[f"{wrapper.site_name}{KEY_SEPARATOR}{local}"] = stored
        return out

    def parameter_report(self, adapter_name: str | None = None) -> dict[str, int]:
        """{"base", "trainable", "nonzero", "adapter_bytes"} for one adapter (default: active).

        base: parameters of the base model; trainable: elements of the adapter's parameters
        that the optimizer holds (dense allocation); nonzero: kept values that are stored;
        adapter_bytes: the exact size of its adapter.safetensors.
        """
        name = adapter_name or self.routing.active
        config = self._require(name)
        base = sum(p.numel() for n, p in self.base_model.named_parameters()
                   if ".adapters." not in f".{n}.")
        trainable = sum(p.numel() for _, m in self.adapter_modules(name) for p in m.parameters())
        tensors = self.export_adapter(name)
        nonzero = sum(s.values.numel() for s in tensors.values())
        size = storage.encoded_size(tensors, storage.value_dtype(config, tensors))
        return {"base": base, "trainable": trainable, "nonzero": nonzero, "adapter_bytes": size}

    def fingerprint(self, exclude: list[str] | None = None) -> dict:
        """The base model's fingerprint without the `exclude` heads (cached; unmerged weights)."""
        exclude = head_modules(self.base_model, None) if exclude is None else exclude
        key = tuple(exclude)
        if key not in self._fingerprints:
            if self.merged_adapter is not None:
                raise AdapterError("fingerprint needs the unmerged base; unmerge_adapter() first")
            self._fingerprints[key] = base_fingerprint(self.base_model, list(exclude))
        return self._fingerprints[key]

    def quantize_base(self, mode: str) -> int:
        """Hold the frozen base's linear weights quantized (`spadapt.quantize`: "int8" via
        torchao); adapters, heads and the output embedding stay in full precision. The
        fingerprints that saving records are taken first, from the unquantized weights, so an
        adapter trained on the int8 base saves the same file format and loads on the fp32
        base. Merging is refused afterwards. Returns how many weights were quantized."""
        if self.merged_adapter is not None:
            raise AdapterError("unmerge_adapter() before quantizing the base")
        kept = set(head_modules(self.base_model, None))
        self.fingerprint()
        for config in self.configs.values():
            heads = head_modules(self.base_model, config.modules_to_save)
            self.fingerprint(heads)
            kept |= set(heads)

        def keep(name: str) -> bool:
            return ".adapters." in f".{name}." or name.split(".", 1)[0] in kept

        count = quantize_frozen_linears(self.base_model, mode, keep)
        if count:
            self.base_quantization = mode
        return count

    def task_of(self, adapter_name: str | None = None) -> AdapterTask:
        """What the adapter's outputs are: a classification head over its labels (the config's,
        else the base config's `id2label`), text from a causal LM, or neither ("adapter")."""
        config = self._require(adapter_name or self.routing.active)
        base_config = getattr(self.base_model, "config", None)
        heads = head_modules(self.base_model, config.modules_to_save)
        if config.labels:
            width = getattr(base_config, "num_labels", None) if heads else None
            if width is not None and width != len(config.labels):
                raise AdapterError(
                    f"the adapter's config names {len(config.labels)} labels {config.labels} "
                    f"but the base model's head {heads} has {width} outputs")
            return AdapterTask("classification", list(config.labels), len(config.labels))
        can_generate = getattr(self.base_model, "can_generate", None)
        if callable(can_generate) and can_generate():
            return AdapterTask("causal_lm")
        id2label = getattr(base_config, "id2label", None) or {}
        if heads and id2label:
            labels = [str(id2label[i]) for i in sorted(id2label, key=int)]
            return AdapterTask("classification", labels, len(labels))
        return AdapterTask("adapter")

    def save_adapter(self, path: str | Path, adapter_name: str | None = None,
                     save_dtype: str | None = None, base_model: str | None = None) -> Path:
        """Write the adapter directory `path` (atomically; see spadapt.storage).

        save_dtype: dtype of the stored values (default: the config's, else the adapter's own);
        base_model: how to find the base again (e.g. "builtin:minilm" or a folder), recorded for
        `spadapt eval/predict`, never trusted over the fingerprint. The task and class names
        are recorded (`task_of`), so a classifier saved from the Python API serves as one.
        """
        name = adapter_name or self.routing.active
        config = self._require(name)
        if not self.masks_final(name):
            raise AdapterError(
                f"adapter {name!r} uses schedule {config.schedule!r} and its masks are not "
                "final yet; call model.finalize_masks() after training, then save"
            )
        exclude = head_modules(self.base_model, config.modules_to_save)
        base = {**self.fingerprint(exclude),
                "name_or_path": getattr(self.base_model.config, "_name_or_path", "")}
        return storage.write_adapter_dir(
            path, adapter_name=name, config=config, tensors=self.export_adapter(name),
            task=self.task_of(name), base=base, excluded_heads=exclude, save_dtype=save_dtype,
            base_model=base_model)

    def load_adapter(self, path: str | Path, adapter_name: str | None = None) -> str:
        """Load an adapter directory into this model under `adapter_name` (default: the saved
        name); returns the name. Verified before the model is touched; never half-loaded."""
        directory = Path(path)
        stored = storage.read_adapter_dir(directory)
        name = adapter_name or stored.adapter_name
        self._check_new_name(name)
        check_fingerprint(stored.manifest.get("base_model", {}),
                          self.fingerprint(stored.manifest.get("excluded_heads", [])),
                          directory / storage.MANIFEST_FILE)
        self.add_stored_adapter(name, stored.config, stored.tensors,
                                directory / storage.WEIGHTS_FILE)
        return name

    def add_stored_adapter(self, adapter_name: str, config: AdapterConfig,
                           tensors: dict[str, StoredTensor], source: str | Path) -> None:
        """Build `adapter_name`'s modules for `config` and load stored `tensors` into them
        (`storage.read_adapter_dir(...).tensors`; `source` names them in errors). Its masks
        are final and it is not activated. On any failure the adapter is removed again."""
        self._check_new_name(adapter_name)
        built = self._build(adapter_name, config)
        self.configs[adapter_name] = config
        try:
            if any(stored.seeded for stored in tensors.values()):
                self._choose_masks(adapter_name, config, built, None)  # rebuild seeded masks
            storage.match_stored_tensors(self.export_adapter(adapter_name), tensors,
                                         Path(source))
            for wrapper, module in self.adapter_modules(adapter_name):
                prefix = f"{wrapper.site_name}{KEY_SEPARATOR}"
                local = {k.removeprefix(prefix): v for k, v in tensors.items()
                         if k.startswith(prefix)}
                if isinstance(module, HeadCopy):
                    module.import_(local)
                else:
                    module.import_(local, self._innermost(wrapper))
        except BaseException:
            self._forget(adapter_name)
            raise
        self.install_final_masks(adapter_name)


def load_adapter(base_model: nn.Module, path: str | Path,
                 adapter_name: str | None = None) -> AdaptedModel:
    """Load an adapter directory onto `base_model` (or an AdaptedModel); it becomes active."""
    model = base_model if isinstance(base_model, AdaptedModel) else AdaptedModel(base_model)
    name = model.load_adapter(path, adapter_name)
    model.set_adapter(name)
    return model


def scores_at_attach(config: AdapterConfig) -> bool:
    """Whether attaching `config` runs its scorer: a sparse delta's positions always are
    chosen then (other schedules may move them later), a bottleneck's masks under "init" and
    "regrow" (which moves them later)."""
    return config.method == "sparse_delta" or (config.schedule in ("init", "regrow") and
                                                config.density < 1.0)


def attach(base_model: nn.Module, config: AdapterConfig, adapter_name: str = "default",
           calibration: Iterable[dict] | None = None) -> AdaptedModel:
    """Wrap `base_model` (frozen) with one adapter, active and trainable."""
    model = base_model if isinstance(base_model, AdaptedModel) else AdaptedModel(base_model)
    model.add_adapter(adapter_name, config, calibration=calibration)
    model.set_adapter(adapter_name)
    return model
