"""`PocOptions`: what `spadapt poc` runs, in a module without torch, so the command line
builds its options from these fields (and `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .helptext import described

DEFAULT_METHODS = ["full", "lora", "adapter", "sparse", "large_sparse", "sparse_delta"]
# --task generate: the base as it is (the "before" row), then the methods at about 1% of its
# linear weights (lora's r is set to match in `method_runs.generate_recipe`)
GENERATE_METHODS = ["base", "full", "lora", "shira", "sparse_delta", "sparse"]
DEFAULT_MODELS = {"classify": "builtin:minilm", "generate": "builtin:smollm2"}
TASKS = ("classify", "generate")


@dataclass
class PocOptions:
    """What `spadapt poc` runs; the CLI's options are these fields (help from `described`)."""

    out: Path = described(help="Run directory for results.json, report.md/html and one "
                          "folder per method.")
    data: str = described("builtin:rotten_tomatoes", help="Training data: a CSV, TSV, JSONL "
                          "or Parquet file, or builtin:NAME (to classify: "
                          "builtin:rotten_tomatoes, builtin:reuters_r8, builtin:reuters_r52, "
                          "builtin:newsgroups20; to generate: builtin:chatterbot_qa, "
                          "builtin:country_qa).")
    eval_data: str | None = described(None, help="Evaluation data (default: a stratified "
                                      "fixed-seed split of the training data).")
    text_column: str = described("text", help="Column with the text.")
    label_column: str = described("label", help="Column with the label.")
    task: str | None = described(None, help="classify or generate (default: generate when the "
                                 "data has the prompt and response columns and no label "
                                 "column, else classify).")
    prompt_column: str = described("prompt", help="generate: column with the prompt.")
    response_column: str = described("response", help="generate: column with the reference "
                                     "response.")
    chat_template: bool = described(True, help="generate: format prompts with the "
                                    "tokenizer's chat template, when it has one.")
    metric: str | None = described(None, help="generate: what the recommendation compares, "
                                   "exact_match or rouge_l (default: exact_match when every "
                                   "reference response is at most 5 words, else rouge_l).")
    model: str | None = described(None, help="Base model: builtin:NAME or a local Hugging Face "
                                  "folder (default: builtin:minilm to classify, builtin:smollm2 "
                                  "to generate).")
    methods: list | None = described(None, help="Methods to compare: recipe names (see "
                                     "`spadapt recipes`) or Recipes (default: "
                                     f"{','.join(DEFAULT_METHODS)} to classify, "
                                     f"{','.join(GENERATE_METHODS)} to generate).")
    budget: str = described("quick", help="quick (minutes), standard (the real comparison), "
                            "or smoke (seconds; for tests).")
    precision: str | None = described(None, help="Precision of every method's training and "
                                      "evaluation forwards: fp32, bf16 (autocast) or auto "
                                      "(bf16 where the hardware computes it natively: a CUDA "
                                      "GPU with bf16, a CPU with AVX512-BF16 or AMX; else "
                                      "fp32). Default: auto for the quick budget, else each "
                                      "recipe's own (fp32).")
    lang: str = described("en", help="Report language: en or ja.")
    seed: int = described(0, help="Seed of the split, initialisation and data order.")
    skip_bad_rows: bool = described(False, help="Skip bad rows (listed in the report) "
                                    "instead of stopping.")
    resume: bool = described(False, help="Keep finished methods of a previous run; resume "
                             "the unfinished one.")
    progress: bool = described(True, help="Progress bars on stderr.")
    tune: bool = described(False, help="First search the sparse-adapter configuration "
                           "(spadapt tune, in OUT/tune, on rows held out of the training "
                           "data) and add the method it finds, 'tuned', to the comparison.")
    tune_trials: int = described(20, help="--tune: trials of the search.")
    tune_max_nonzero: str = described("0.5%", help="--tune: most trained non-zeros of a "
                                      "configuration (a share of the base, or a count).")
