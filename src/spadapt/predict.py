"""Using a saved adapter: load it onto its base model, predict for texts, evaluate a file.

The adapter directory records how to find its base (`base_model` in adapter_config.json, e.g.
"builtin:minilm"); the fingerprint check at load guarantees it is the right one. The task is
the one the directory records (`spadapt.storage.read_adapter_dir(...).task`): a classifier
(labels with probabilities; accuracy, macro-F1, confusion matrix) or a causal-LM adapter (greedy
answers to prompts; response loss, perplexity and exact match on a prompt/response file).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import SpadaptError
from .tasks.common import device_of


class PredictError(SpadaptError):
    """An adapter cannot be used for prediction as asked."""


def load_adapted(adapter_dir: Path, model: str | None = None):
    """(adapted model, task) for an adapter directory: a ClassificationTask for an adapter
    saved as a classifier, a CausalLMTask for a causal-LM one (as the directory records)."""
    from transformers import AutoTokenizer

    from .assets import resolve_model
    from .model import load_adapter
    from .storage import read_adapter_dir
    from .tasks import CausalLMTask, ClassificationTask

    saved = read_adapter_dir(adapter_dir)
    stored = saved.task  # what the adapter's outputs are
    reference = model or saved.base_model
    if not reference:
        raise PredictError(f"{adapter_dir} does not record its base model; pass --model")
    path = str(resolve_model(reference))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if stored.task == "classification":
        task = ClassificationTask(tokenizer, list(stored.labels), max_length=512)
    elif stored.task == "causal_lm":
        task = CausalLMTask(tokenizer, max_length=512)
    else:
        raise PredictError(f"{adapter_dir} is a bare adapter (task {stored.task!r}: no "
                           "classification head and not a causal LM); it cannot predict")
    adapted = load_adapter(task.load_base(path), adapter_dir)
    adapted.eval()
    return adapted, task


def predict_texts(model, task, texts: list[str]) -> list[dict]:
    """Classifier: [{"text", "label", "probabilities": {label: p}}] for each text.
    Causal LM: [{"prompt", "response"}], the greedy answer to each text."""
    from .data import Example

    if not texts or any(not t.strip() for t in texts):
        raise PredictError("give at least one non-empty --text")
    if not task.labels:
        return [{"prompt": text, "response": answer}
                for text, answer in zip(texts, task.generate(model, texts), strict=True)]
    probabilities, _ = task.predict(model, [Example(t, 0) for t in texts])
    out = []
    for text, row in zip(texts, probabilities.tolist(), strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        out.append({"text": text, "label": task.labels[best],
                    "probabilities": dict(zip(task.labels, row, strict=True))})
    return out


def evaluate_file(model, task, data: str, text_column: str = "text",
                  label_column: str = "label", skip_bad_rows: bool = False,
                  prompt_column: str = "prompt", response_column: str = "response",
                  precision: str = "fp32") -> dict:
    """The adapter's metrics on every valid row of `data`: accuracy, macro-F1 and confusion
    matrix for a classifier; response loss, perplexity and exact match for a causal LM.
    `precision` "bf16" evaluates under bf16 autocast, as a PoC run in bf16 did."""
    from .data import load_dataset
    from .train.levers import autocast

    # A file is evaluated on all its rows; a builtin dataset on its own evaluation split.
    rows_of = None if data.startswith("builtin:") else data
    if not task.labels:
        split = load_dataset(data, rows_of, prompt_column=prompt_column,
                             response_column=response_column, task="causal_lm",
                             skip_bad_rows=skip_bad_rows)
        with torch.no_grad(), autocast(precision, device_of(model)):
            metrics = task.evaluate(model, split.eval)
        return {"data": data, "rows": len(split.eval), "rejected_rows": len(split.rejected),
                **metrics}
    split = load_dataset(data, rows_of, text_column=text_column, label_column=label_column,
                         task="classification", skip_bad_rows=skip_bad_rows)
    unknown = sorted(set(split.labels) - set(task.labels))
    if unknown:
        raise PredictError(f"{data} has labels {unknown} that the adapter does not know "
                           f"(it knows {task.labels})")
    remap = {i: task.labels.index(name) for i, name in enumerate(split.labels)}
    examples = [type(e)(e.text, remap[e.label]) for e in split.eval]
    with torch.no_grad(), autocast(precision, device_of(model)):
        metrics = task.evaluate(model, examples)
    return {"data": data, "rows": len(examples), "rejected_rows": len(split.rejected),
            "labels": task.labels, **metrics}


def classify_remote(server: str, adapter: str, texts: list[str],
                    api_key: str | None = None, timeout: float = 60.0) -> list[dict]:
    """The same rows as `predict_texts`, from a running `spadapt serve` (POST /v1/classify)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.rstrip("/") + "/v1/classify", method="POST",
        data=json.dumps({"adapter": adapter, "texts": texts}).encode(),
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {api_key}"} if api_key else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        try:
            detail = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise PredictError(f"{server} answered {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise PredictError(f"cannot reach {server}: {error}") from None
    return [{"text": text, **result} for text, result in zip(texts, body["results"], strict=True)]
