"""Causal-LM instruction tuning on decoders: prompt/response batches, loss on the response only,
and greedy generations scored by exact match and ROUGE-L (`answer_metrics`).

The base is `AutoModelForCausalLM`, unchanged (no new head). An example is the formatted prompt
(the tokenizer's chat template with the generation prompt when it has one and `chat_template`
is on, else "Question: {prompt}\nAnswer: ") followed by the response and the EOS token. Prompt
and response are tokenized separately and concatenated, so training sees exactly the prompt
tokens that generation later starts from. Labels are the input ids with prompt and padding
positions set to -100: Hugging Face causal LMs shift labels by one internally, so the loss is
the mean next-token cross-entropy over response tokens (EOS included).

What does not live here: classification (`classification.py`), loading data (`spadapt.data`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .answer_metrics import exact_match, rouge_l
from .common import device_of, left_pad, quiet_transformers

IGNORE = -100  # label value that Hugging Face losses skip
QUALITY_METRICS = ("exact_match", "rouge_l")  # what "accuracy" can repeat (higher is better)
PLAIN_TEMPLATE = "Question: {prompt}\nAnswer: "  # used when the tokenizer has no chat template


@dataclass
class CausalLMTask:
    tokenizer: object  # a Hugging Face tokenizer; given a pad token (= EOS) if it has none
    max_length: int = 128  # tokens of prompt + response after truncation (>= 2)
    max_new_tokens: int = 32  # greedy tokens generated per prompt for exact match
    chat_template: bool = True  # format prompts with the tokenizer's chat template, if any
    quality_metric: str = "exact_match"  # what "accuracy" repeats: one of QUALITY_METRICS
    answers: bool = True  # evaluate() also answers greedily and scores the answers; False:
    #                       loss and perplexity only (spadapt tune's trials, scored on loss)

    name = "causal_lm"
    # The metric that selects the best checkpoint (higher is better): exact match stays at 0
    # for many steps, so selection and early stopping follow the response loss instead.
    metric = "negative_loss"
    labels = ()  # no label names: the shape of ClassificationTask, for reports and results

    def __post_init__(self) -> None:
        if not isinstance(self.max_length, int) or self.max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2 (one prompt token and one "
                             f"response token), got {self.max_length!r}")
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; a causal-LM task ends every "
                             "response with it (set tokenizer.eos_token first)")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.quality_metric not in QUALITY_METRICS:
            raise ValueError(f"quality_metric must be one of {list(QUALITY_METRICS)}, got "
                             f"{self.quality_metric!r}")

    def load_base(self, path: str) -> nn.Module:
        from transformers import AutoModelForCausalLM

        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(path, local_files_only=True)

    # Tokens ---------------------------------------------------------------------------------------
    def _templated(self) -> bool:
        return self.chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, prompt: str) -> str:
        """The text the model sees before its answer (chat template or the plain template)."""
        if self._templated():
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True,
                tokenize=False)
        return PLAIN_TEMPLATE.format(prompt=prompt)

    def _prompt_ids(self, prompt: str) -> list[int]:
        # A chat template writes its own special tokens; the plain template gets the
        # tokenizer's usual ones (a BOS for Llama-style tokenizers).
        return self.tokenizer(self.format_prompt(prompt),
                              add_special_tokens=not self._templated())["input_ids"]

    def _response_ids(self, response: str) -> list[int]:
        ids = self.tokenizer(response, add_special_tokens=False)["input_ids"]
        return ids + [self.tokenizer.eos_token_id]

    def encode(self, example) -> tuple[list[int], list[int]]:
        """(prompt ids, response ids + EOS) truncated to `max_length` tokens together.

        The prompt's start is kept and the response is cut from its end. When the prompt alone
        leaves no room (>= max_length tokens), it is cut from the left to `max_length - 1`
        tokens instead, keeping its end (the generation prompt) and the first response token,
        so that every example has at least one token of loss.
        """
        prompt, response = self._prompt_ids(example.prompt), self._response_ids(example.response)
        if len(prompt) >= self.max_length:
            prompt = prompt[len(prompt) - (self.max_length - 1):]
        return prompt, response[: self.max_length - len(prompt)]

    def truncated_prompts(self, examples: Sequence) -> int:
        """How many of `examples` have a prompt that `encode` cuts from the left (its formatted
        prompt is `max_length` tokens or longer): the count a report states."""
        return sum(len(self._prompt_ids(e.prompt)) >= self.max_length for e in examples)

    def collate(self, examples: Sequence) -> dict[str, torch.Tensor]:
        """Right-padded `input_ids`, `attention_mask` and `labels`, each (batch, longest)."""
        encoded = [self.encode(e) for e in examples]
        width = max(len(p) + len(r) for p, r in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
        labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
        for row, (prompt, response) in enumerate(encoded):
            length = len(prompt) + len(response)
            input_ids[row, :length] = torch.tensor(prompt + response)
            attention_mask[row, :length] = 1
            labels[row, len(prompt):length] = torch.tensor(response)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    # Metrics --------------------------------------------------------------------------------------
    @torch.no_grad()
    def response_loss(self, model: nn.Module, examples: Sequence, batch_size: int = 64
                      ) -> tuple[float, int]:
        """(mean cross-entropy per response token over all examples, number of those tokens).

        Every token weighs the same, however the examples are batched (a mean of per-batch
        means would not).
        """
        device = device_of(model)
        total, count = 0.0, 0
        for start in range(0, len(examples), batch_size):
            batch = self.collate(examples[start : start + batch_size])
            labels = batch.pop("labels")[:, 1:].to(device)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits[:, :-1]
            kept = labels != IGNORE  # the position before each response token predicts it
            total += float(nn.functional.cross_entropy(
                logits[kept].float(), labels[kept], reduction="sum"))
            count += int(kept.sum())
        return total / max(1, count), count

    @torch.no_grad()
    def generate(self, model: nn.Module, prompts: Sequence[str], batch_size: int = 64
                 ) -> list[str]:
        """Greedy answers (decoded, special tokens dropped, cut at EOS) to `prompts`.

        Prompts are formatted and truncated as in `collate`, left-padded, and continued for
        at most `max_new_tokens` tokens. Works for a spadapt `AdaptedModel` (its `generate`
        routes the active adapter), a PEFT model or a plain `transformers` model.
        """
        device = device_of(model)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        answers = []
        for start in range(0, len(prompts), batch_size):
            ids = [self._prompt_ids(p)[-(self.max_length - 1):]
                   for p in prompts[start : start + batch_size]]
            input_ids, attention_mask = left_pad(ids, pad)
            width = input_ids.shape[1]
            with quiet_transformers():  # no notes on the checkpoint's sampling settings
                output = model.generate(input_ids=input_ids.to(device),
                                        attention_mask=attention_mask.to(device),
                                        max_new_tokens=self.max_new_tokens, do_sample=False,
                                        pad_token_id=pad, eos_token_id=eos)
            for row in output[:, width:].tolist():
                row = row[: row.index(eos)] if eos in row else row
                answers.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return answers

    def evaluate(self, model: nn.Module, examples: Sequence, batch_size: int = 64) -> dict:
        """Response-token loss and perplexity, and greedy answers scored against the references.

        "exact_match": fraction of answers equal to the reference after `normalise_answer`
        (case, whitespace, trailing punctuation); "exact_match_strict": equal after stripping
        only; "rouge_l": mean ROUGE-L F1. "accuracy" and "macro_f1" repeat `quality_metric` so
        that reports and `results.json` built for classification find the keys they expect;
        they are not classification metrics here. With `answers` off, only the loss, its
        negative and the perplexity (no generation). The model is evaluated in eval mode and
        left in the training mode it came in.
        """
        was_training = model.training
        model.eval()
        try:
            loss, _ = self.response_loss(model, examples, batch_size)
            metrics = {
                "loss": loss,
                "negative_loss": -loss,  # `metric`: higher is better
                "perplexity": math.exp(min(loss, 700.0)),  # exp overflows a float past ~709
            }
            if not self.answers:
                return metrics
            answers = self.generate(model, [e.prompt for e in examples], batch_size)
        finally:
            model.train(was_training)
        references = [e.response for e in examples]
        strict = sum(a.strip() == r.strip() for a, r in zip(answers, references, strict=True))
        metrics.update({
            "exact_match": exact_match(answers, references),
            "exact_match_strict": strict / max(1, len(examples)),
            "rouge_l": rouge_l(answers, references),
        })
        metrics["accuracy"] = metrics["macro_f1"] = metrics[self.quality_metric]
        return metrics

