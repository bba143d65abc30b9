"""Tasks: how examples become batches and predictions become metrics, per kind of model.

`classification.py`: sequence classification on encoders (accuracy, macro-F1, confusion matrix).
`causal_lm.py`: instruction tuning on decoders (response-token loss, answers by exact match and
ROUGE-L: `answer_metrics.py`).
A task object offers `load_base(path)`, `collate(examples)` and `evaluate(model, examples)`.
"""

from .causal_lm import CausalLMTask
from .classification import ClassificationTask

__all__ = ["CausalLMTask", "ClassificationTask"]
