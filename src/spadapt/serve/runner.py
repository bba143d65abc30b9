"""The base model on the server's side: loading it per head width, and what one forward does.

One base checkpoint per server (`ServedBase`). Classification adapters carry their own head
over their own labels, so adapters with heads of the same width share one model instance (one
forward, heads routed per row); another width needs another instance of the base with a head
of that width (`build(head)`; head 0 = the causal-LM model). Everything here runs on the
batcher's single worker thread: the tokenizer and the models are never used by two threads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..arch import ARCHITECTURES
from ..methods import BASE_NAME
from ..model import AdaptedModel
from ..tasks.common import left_pad, quiet_transformers
from .errors import ServeError

CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def is_causal_lm(config: dict) -> bool:
    """Whether a model folder's config.json describes a decoder with a language-model head."""
    architectures = config.get("architectures") or []
    if architectures:
        return any(a.endswith(CAUSAL_SUFFIXES) for a in architectures)
    decoders = ARCHITECTURES["llama"].model_types + ARCHITECTURES["gpt2"].model_types
    return config.get("model_type") in decoders


@dataclass(frozen=True)
class Sampling:
    """How one row picks its tokens: greedy at temperature 0, else sampled (nucleus `top_p`)
    from its own generator, so that a seed gives the same text whatever shares the batch."""

    temperature: float = 0.0  # 0: the most likely token (greedy)
    top_p: float = 1.0  # sample from the smallest set of tokens holding this probability
    seed: int | None = None  # None: a fresh random seed

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


class RowSampler:
    """A logits processor for one batched `generate`: each sampling row draws its token with
    its own generator and leaves only that token's score finite, so that the greedy search
    around it picks the draw; greedy rows pass through untouched."""

    def __init__(self, samplings: list[Sampling]) -> None:
        self.samplings = samplings
        self.generators = [None if s.greedy else torch.Generator().manual_seed(
            s.seed if s.seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
            for s in samplings]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for row, (sampling, generator) in enumerate(zip(self.samplings, self.generators,
                                                        strict=True)):
            if generator is None:
                continue
            probabilities = torch.softmax(scores[row].float() / sampling.temperature, dim=-1)
            if sampling.top_p < 1.0:
                ordered, order = torch.sort(probabilities, descending=True)
                outside = ordered.cumsum(0) - ordered >= sampling.top_p  # the top token stays
                probabilities[order[outside]] = 0.0
            token = torch.multinomial(probabilities.cpu(), 1, generator=generator).item()
            scores[row] = -math.inf
            scores[row, token] = 0.0
        return scores


class RowStreamer:
    """A `generate` streamer that hands each row's new token id to that row's callback (None:
    the row is not streamed). The first `put` is the prompt, which it skips."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for sink, token in zip(self.sinks, value.reshape(-1).tolist(), strict=True):
            if sink is not None:
                sink(token)

    def end(self) -> None:
        pass


@dataclass
class Generated:
    """One completion: decoded text, why it stopped ("stop" = EOS, "length"), token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class ServedBase:
    """The server's base checkpoint: tokenizer, model instances per head width, forwards."""

    def __init__(self, reference: str, max_length: int) -> None:
        from transformers import AutoTokenizer

        from ..assets import resolve_model

        self.reference = reference  # as the user named it (the id of the base in /v1/models)
        self.path = Path(resolve_model(reference))
        self.config = json.loads((self.path / "config.json").read_text())
        self.causal = is_causal_lm(self.config)
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        if self.causal and self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        positions = self.config.get("max_position_embeddings") or max_length
        self.max_length = min(max_length, int(positions))  # tokens per text or prompt + answer

    @property
    def names(self) -> set[str]:
        """Names that mean "the base, no adapter" in an OpenAI `model` field."""
        return {"", BASE_NAME, self.reference, str(self.path), self.path.name}

    def build(self, head: int) -> AdaptedModel:
        """A fresh instance of the base: a causal LM (head 0) or a classifier over `head` labels."""
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        with quiet_transformers():
            if head == 0:
                if not self.causal:
                    raise ServeError(400, "wrong_task", f"the base model {self.reference!r} is "
                                     "not a causal language model; it cannot complete text")
                model = AutoModelForCausalLM.from_pretrained(str(self.path),
                                                             local_files_only=True)
            else:  # the head is random here: every classification adapter brings its own
                model = AutoModelForSequenceClassification.from_pretrained(
                    str(self.path), num_labels=head, local_files_only=True,
                    ignore_mismatched_sizes=True)
                if model.config.pad_token_id is None:  # decoders pick the last non-pad token
                    model.config.pad_token_id = self.tokenizer.pad_token_id
        return AdaptedModel(model).eval()

    # Forwards ---------------------------------------------------------------------------------
    @torch.no_grad()
    def classify(self, model: AdaptedModel, texts: list[str], routes: list[str]
                 ) -> list[list[float]]:
        """Softmax probabilities per row; row i goes through adapter `routes[i]` (one forward).

        Tokenized as `ClassificationTask.collate` does (padded to the longest row, truncated to
        `max_length` tokens).
        """
        encoded = self.tokenizer(texts, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        inputs = {k: v for k, v in encoded.items()
                  if k in ("input_ids", "attention_mask", "token_type_ids")}
        logits = model(**inputs, adapter_names=routes).logits
        return torch.softmax(logits.float(), dim=-1).tolist()

    def prompt_ids(self, prompt: str, chat: bool) -> list[int]:
        """Token ids of a prompt; a chat prompt (already templated) gets no extra specials."""
        ids = self.tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
        if not ids:
            raise ServeError(400, "invalid_request_error", "the prompt is empty after "
                             "tokenization; give some text")
        return ids

    @torch.no_grad()
    def generate(self, model: AdaptedModel, prompts: list[list[int]], routes: list[str],
                 max_tokens: list[int], samplings: list[Sampling] | None = None,
                 sinks: list | None = None) -> list[Generated]:
        """Continuations of left-padded `prompts` in one `generate` call: greedy, or sampled
        per row (`samplings`); `sinks[i]`, if set, gets row i's token ids as they come.

        Rows run to the largest `max_tokens`; each is then cut to its own limit, and at EOS
        (as `CausalLMTask.generate` cuts and decodes).
        """
        from transformers import LogitsProcessorList

        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        input_ids, attention_mask = left_pad(prompts, pad)
        width = input_ids.shape[1]
        extra = {}
        if samplings is not None and not all(s.greedy for s in samplings):
            extra["logits_processor"] = LogitsProcessorList([RowSampler(samplings)])
        if sinks is not None and any(sink is not None for sink in sinks):
            extra["streamer"] = RowStreamer(sinks)
        with quiet_transformers():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                    max_new_tokens=max(max_tokens), do_sample=False,
                                    pad_token_id=pad, eos_token_id=eos, adapter_names=routes,
                                    **extra)
        out = []
        for row, ids in enumerate(output[:, width:].tolist()):
            ids = ids[: max_tokens[row]]
            finish = "length"
            if eos in ids:
                ids, finish = ids[: ids.index(eos)], "stop"
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            out.append(Generated(text, finish, len(prompts[row]), len(ids)))
        return out
