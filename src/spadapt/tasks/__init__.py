"""Tasks: how examples become batches and predictions become metrics, per kind of model.

`classification.py`: sequence classification on encoders (accuracy, macro-F1, confusion matrix).
A task object offers `load_base(path)`, `collate(examples)` and `evaluate(model, examples)`.
"""

from .classification import ClassificationTask

__all__ = ["ClassificationTask"]
