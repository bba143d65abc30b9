"""Using a saved adapter: load it onto its base model, predict labels for texts, evaluate a file.

The adapter directory records how to find its base (`base_model` in adapter_config.json, e.g.
"builtin:minilm"); the fingerprint check in `spadapt.storage` guarantees it is the right one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import SpadaptError


class PredictError(SpadaptError):
    """An adapter cannot be used for prediction as asked."""


def load_classifier(adapter_dir: Path, model: str | None = None):
    """(adapted model, task) for a classification adapter directory."""
    from transformers import AutoTokenizer

    from .assets import resolve_model
    from .storage import CONFIG_FILE, load_adapter, read_adapter_dir
    from .tasks import ClassificationTask

    config, _, _, _ = read_adapter_dir(adapter_dir)
    saved = json.loads((Path(adapter_dir) / CONFIG_FILE).read_text())
    reference = model or saved.get("base_model")
    if not reference:
        raise PredictError(f"{adapter_dir} does not record its base model; pass --model")
    if not config.labels:
        raise PredictError(f"{adapter_dir} has no labels: it is not a classification adapter")
    path = str(resolve_model(reference))
    task = ClassificationTask(AutoTokenizer.from_pretrained(path, local_files_only=True),
                              list(config.labels), max_length=512)
    adapted = load_adapter(task.load_base(path), adapter_dir)
    adapted.eval()
    return adapted, task


def predict_texts(model, task, texts: list[str]) -> list[dict]:
    """[{"text", "label", "probabilities": {label: p}}] for each text."""
    from .data import Example

    if not texts or any(not t.strip() for t in texts):
        raise PredictError("give at least one non-empty --text")
    probabilities, _ = task.predict(model, [Example(t, 0) for t in texts])
    out = []
    for text, row in zip(texts, probabilities.tolist(), strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        out.append({"text": text, "label": task.labels[best],
                    "probabilities": dict(zip(task.labels, row, strict=True))})
    return out


def evaluate_file(model, task, data: str, text_column: str, label_column: str,
                  skip_bad_rows: bool = False) -> dict:
    """Accuracy, macro-F1 and confusion matrix of the adapter on every valid row of `data`."""
    from .data import load_dataset

    split = load_dataset(data, data, text_column=text_column, label_column=label_column,
                         skip_bad_rows=skip_bad_rows)
    unknown = sorted(set(split.labels) - set(task.labels))
    if unknown:
        raise PredictError(f"{data} has labels {unknown} that the adapter does not know "
                           f"(it knows {task.labels})")
    remap = {i: task.labels.index(name) for i, name in enumerate(split.labels)}
    examples = [type(e)(e.text, remap[e.label]) for e in split.eval]
    with torch.no_grad():
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
