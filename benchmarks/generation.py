"""Generation speed on the decoder: tokens per second, base against adapters, mixed batches.

SmolLM2-135M-Instruct (`--model`), 8 chatterbot_qa evaluation prompts (chat-templated, left
padded), 64 new tokens each (EOS suppressed until then, so every call makes 8 × 64 tokens),
greedy, KV cache. Calls, timed interleaved (common.interleaved) after one untimed pass:

- base: the plain model;
- for `sparse_delta` (1% of all linear weights) and the `sparse` bottleneck (r=64, density
  0.2): one model holding 8 adapters of random support and values (as if trained): `single`
  all rows through the active adapter; `routed_one` all rows named to one adapter through
  `adapter_names`; `mixed` row i to adapter i (8 adapters in one batch);
- sparse_delta merged into a copy of the base weights.

Reported: tokens per second (median over rounds) and round-by-round ratios: each to the base,
mixed to routed_one, merged to base.

    python -m benchmarks generation [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy

import torch

from .common import interleaved, ratio_summary, resident_adapters, write_result

PROMPTS = 8  # rows per call
NEW_TOKENS = 64  # tokens each row generates
ADAPTERS = 8  # adapters resident on one model
SETTINGS = {"sparse_delta": dict(method="sparse_delta", density=0.01),
            "sparse": dict(method="bottleneck", placement="post_ln", bottleneck=64, density=0.2)}


def run(model_name: str, rounds: int) -> dict:
    from transformers import AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.quantize import quiet_torchao
    from spadapt.tasks import CausalLMTask
    from spadapt.tasks.common import left_pad

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = str(resolve_model(model_name))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    task = CausalLMTask(tokenizer, max_length=256)
    with quiet_torchao():
        base = task.load_base(path).eval()
    prompts = [e.prompt for e in load_dataset("builtin:chatterbot_qa").eval[:PROMPTS]]
    ids = [tokenizer(task.format_prompt(p), add_special_tokens=False)["input_ids"]
           for p in prompts]  # chat-templated, as the PoC prompts
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
        else tokenizer.eos_token_id
    input_ids, attention_mask = left_pad(ids, pad)

    def generate(model, **routing):
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                    max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                    do_sample=False, pad_token_id=pad, use_cache=True,
                                    **routing)
        assert output.shape[1] - input_ids.shape[1] == NEW_TOKENS

    torch.manual_seed(0)
    many = {method: resident_adapters(base, SETTINGS[method], ADAPTERS) for method in SETTINGS}
    merged = copy.deepcopy(many["sparse_delta"])
    merged.merge_adapter("a0")
    one = ["a0"] * PROMPTS
    mixed = [f"a{i % ADAPTERS}" for i in range(PROMPTS)]
    calls = {"base": lambda: generate(base), "sparse_delta_merged": lambda: generate(merged)}
    for method, model in many.items():
        calls[f"{method}_single"] = lambda m=model: generate(m)
        calls[f"{method}_routed_one"] = lambda m=model: generate(m, adapter_names=one)
        calls[f"{method}_mixed"] = lambda m=model: generate(m, adapter_names=mixed)
    for call in calls.values():  # one untimed pass: allocator and kernels warm
        call()
    series = interleaved(calls, rounds=rounds, warmup=0, repeats=1)
    tokens = PROMPTS * NEW_TOKENS
    results = {}
    for name in calls:
        # a time ratio base/name is the throughput ratio name/base
        entry = {"tokens_per_second": tokens / series[name].summary()["median"],
                 "seconds": series[name].summary(),
                 "throughput_ratio_to_base": ratio_summary(series["base"], series[name])}
        results[name] = entry
    for method in SETTINGS:
        results[f"{method}_mixed"]["throughput_ratio_to_routed_one"] = ratio_summary(
            series[f"{method}_routed_one"], series[f"{method}_mixed"])
        results[f"{method}_mixed"]["throughput_ratio_to_single"] = ratio_summary(
            series[f"{method}_single"], series[f"{method}_mixed"])
    payload = {"model": model_name, "prompts": PROMPTS, "new_tokens": NEW_TOKENS,
               "prompt_tokens": int(attention_mask.sum()), "padded_width": input_ids.shape[1],
               "adapters_resident": ADAPTERS, "rounds": rounds,
               "settings": {m: SETTINGS[m] for m in SETTINGS}, "calls": results}
    write_result("generation", payload)
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="builtin:smollm2")
    parser.add_argument("--rounds", type=int, default=5)


def main(args: argparse.Namespace) -> dict:
    return run(args.model, args.rounds)
