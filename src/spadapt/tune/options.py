"""`TuneOptions`: what `spadapt tune` runs, in a module without torch, so the command line
builds its options from these fields (and `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..helptext import described


@dataclass
class TuneOptions:
    """What `spadapt tune` searches; the CLI's options are these fields."""

    out: Path = described(help="Study directory: study.db, trials.csv, best.yaml, search.png.")
    data: str = described("builtin:rotten_tomatoes", help="Training data: a CSV, TSV, JSONL "
                          "or Parquet file, or builtin:NAME.")
    eval_data: str | None = described(None, help="Evaluation data; the search never reads "
                                      "it (it scores trials on rows split off the training "
                                      "data), but it fixes which rows are training rows.")
    text_column: str = described("text", help="Column with the text.")
    label_column: str = described("label", help="Column with the label.")
    prompt_column: str = described("prompt", help="Column with the prompt (prompt/response "
                                   "data: trials are scored on validation response loss).")
    response_column: str = described("response", help="Column with the reference response.")
    model: str | None = described(None, help="Base model: builtin:NAME or a local Hugging Face "
                                  "folder (default: builtin:minilm to classify, "
                                  "builtin:smollm2 for prompt/response data).")
    budget: str = described("quick", help="Training budget of each trial: smoke, quick or "
                            "standard (as `spadapt poc --budget`).")
    precision: str | None = described(None, help="Precision of every trial's training and "
                                      "validation forwards: fp32, bf16 (autocast) or auto "
                                      "(bf16 where the hardware computes it natively). "
                                      "Default: the budget's (auto on quick, else fp32); "
                                      "best.yaml records what the trials ran at.")
    trials: int = described(20, help="Trials the study holds when done (--resume continues "
                            "the same study up to this many).")
    minutes: float | None = described(None, help="Stop starting trials after this many "
                                      "minutes (default: no limit).")
    max_nonzero: str = described("0.5%", help="Most trained non-zero values a configuration "
                                 "may have: a share of the base's parameters (0.5%) or a "
                                 "count (100000).")
    objective: str = described("accuracy", help="accuracy (the best validation score wins: "
                               "accuracy, or the lowest response loss on prompt/response data; "
                               "poor trials are pruned) or pareto (that score, non-zeros and "
                               "step time together, no pruning: the Pareto front goes to "
                               "pareto.csv, its best-scoring trial to best.yaml).")
    validation_rows: int | None = described(None, help="Training rows held out to score the "
                                            "trials, at most a fifth of the training data "
                                            "(default: 1000 to classify, 100 for "
                                            "prompt/response data).")
    seed: int = described(0, help="Seed of the sampler, the split and every trial's training.")
    resume: bool = described(False, help="Continue the study in OUT (after a kill too).")
    progress: bool = described(True, help="A line per trial on stderr, with the best so far.")
