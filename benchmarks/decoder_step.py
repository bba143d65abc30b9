"""Training step time and peak memory on a decoder, for each lever: `python -m benchmarks step
--model builtin:smollm2` (or a local causal LM's folder).

Rows: 8 × exactly 256 tokens of chatterbot_qa text, loss on every token, AdamW (lr 1e-3).
Competitors: the frozen-base floor (nothing trained, backward through the whole model to its
input embeddings), full fine-tuning, PEFT LoRA r=8 on all linear layers, PEFT SHiRA at 1% of
the linear weights, spadapt `sparse_delta` (its recipe: 1% of all linear weights) and the
`sparse` recipe's bottleneck sparse adapter. Levers (`spadapt.train.levers`, the functions
`spadapt.train` applies): fp32; bf16 autocast; gradient checkpointing; the int8 base (where
full fine-tuning and SHiRA are not run: `NOT_ON_INT8` says why).

Time: one process per lever holds its competitors and times them interleaved (see
common.interleaved); ratios to that lever's floor and LoRA are taken round by round. A lever
against another is a ratio of medians from processes run one after another: indicative.
`--levers` names the levers to measure; those of an earlier result for the same model are
kept. Memory: a fresh process per (competitor, lever) takes `memory_steps` steps and reports the
peak of live tensor bytes (`tensor_memory.LiveTensorBytes`: weights, activations, gradients,
optimizer state, temporaries: what a GPU's allocator would hold), the bytes still live after
the last step (weights + optimizer state), and the process's resident high-water mark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from .common import RESULTS_DIR, interleaved, ratio_summary, write_result
from .competitors import Trainee, carry_gradients_to_inputs, trainee_from

BATCH_ROWS = 8  # rows per batch
TOKENS = 256  # tokens per row
LEVERS = ("fp32", "bf16", "checkpointing", "int8")
COMPETITORS = ("floor", "full", "lora", "shira", "sparse_delta", "sparse")
DESCRIPTIONS = {
    "floor": "frozen-base floor (nothing trained, backward to the inputs)",
    "full": "full fine-tuning",
    "lora": "PEFT LoRA r=8 (all linear layers)",
    "shira": "PEFT SHiRA (all linear layers, 1% values)",
    "sparse_delta": "spadapt sparse_delta (density 0.01, all linear layers)",
    "sparse": "spadapt sparse adapter (the sparse recipe: r=64, SNIP, density 0.2)",
}


@dataclass
class DecoderBase:
    model: nn.Module  # AutoModelForCausalLM, fp32, never trained
    ids: torch.Tensor  # a long stream of token ids of chatterbot_qa text

    def batch(self, index: int = 0) -> dict[str, torch.Tensor]:
        """Batch `index`: BATCH_ROWS rows of exactly TOKENS tokens, labels = inputs."""
        size = BATCH_ROWS * TOKENS
        start = (index * size) % max(1, self.ids.numel() - size)
        input_ids = self.ids[start : start + size].view(BATCH_ROWS, TOKENS).clone()
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                "labels": input_ids.clone()}


def load_decoder(model: str) -> DecoderBase:
    from transformers import AutoTokenizer
    from transformers.utils import logging

    from spadapt.assets import resolve_model
    from spadapt.data import load_dataset
    from spadapt.quantize import quiet_torchao
    from spadapt.tasks import CausalLMTask

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = str(resolve_model(model))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    with quiet_torchao():
        base = CausalLMTask(tokenizer, max_length=TOKENS).load_base(path)
    pairs = load_dataset("builtin:chatterbot_qa").train
    text = "\n".join(f"{e.prompt} {e.response}" for e in pairs)
    ids = torch.tensor(tokenizer(text)["input_ids"])
    while ids.numel() < 4 * BATCH_ROWS * TOKENS:
        ids = torch.cat([ids, ids])
    return DecoderBase(base, ids)


def build(name: str, base: nn.Module, calibration: list[dict]) -> nn.Module:
    """Competitor `name` built on `base` (which it modifies), fp32."""
    from spadapt.method_runs import build_model
    from spadapt.peft_methods import lora_model, shira_model
    from spadapt.recipe import load_recipe

    if name == "floor":  # the `base` recipe freezes everything
        return carry_gradients_to_inputs(build_model(load_recipe("base"), base, [], [], seed=0))
    if name == "lora":
        return lora_model(base, {**load_recipe("lora").lora, "target_modules": "all-linear"},
                          classifier=False)
    if name == "shira":
        return shira_model(base, {"density": 0.01}, classifier=False, seed=0)
    return build_model(load_recipe(name), base, [], calibration, seed=0)


def make(name: str, lever: str, base: nn.Module, calibration: list[dict]) -> Trainee:
    """Competitor `name` under `lever`, on a copy of `base`, with its optimizer."""
    from spadapt.train.levers import checkpoint_activations, quantize_base

    def build_with_lever(base: nn.Module, calibration: list[dict]) -> nn.Module:
        model = build(name, base, calibration)
        if lever == "checkpointing":
            checkpoint_activations(model)
        if lever == "int8":
            quantize_base(model, "int8")
        return model

    trainee = trainee_from(name, build_with_lever, base, calibration)
    trainee.precision = "bf16" if lever == "bf16" else "fp32"
    return trainee


# what cannot run on the int8 base, and why
NOT_ON_INT8 = {"full": "full fine-tuning trains every weight: nothing is left to quantize",
               "shira": "PEFT SHiRA adds its delta in place to a copy of the weight, an "
                        "operator torchao's int8 tensor does not implement"}


def runs_under(lever: str) -> list[str]:
    return [n for n in COMPETITORS if not (lever == "int8" and n in NOT_ON_INT8)]


def time_lever(model: str, lever: str, rounds: int, warmup: int, repeats: int) -> dict:
    """In this process: every competitor under `lever`, timed interleaved."""
    decoder = load_decoder(model)
    batch = decoder.batch(0)
    calibration = [decoder.batch(i) for i in range(2)]
    trainees = {name: make(name, lever, decoder.model, calibration)
                for name in runs_under(lever)}
    del decoder
    series = interleaved({name: (lambda t=t: t.step(batch)) for name, t in trainees.items()},
                         rounds=rounds, warmup=warmup, repeats=repeats)
    results = {}
    for name, trainee in trainees.items():
        results[name] = {"trainable_parameters": trainee.trainable_parameters(),
                         "step_seconds": series[name].summary(),
                         "ratio_to_floor": ratio_summary(series[name], series["floor"]),
                         "ratio_to_lora": ratio_summary(series[name], series["lora"])}
    return results


def memory_of(model: str, name: str, lever: str, steps: int) -> dict:
    """In this process: competitor `name` under `lever`; live tensor bytes and resident peak."""
    from spadapt.train.meters import PeakMemory, release_memory

    from .tensor_memory import LiveTensorBytes

    decoder = load_decoder(model)
    batch = decoder.batch(0)
    trainee = make(name, lever, decoder.model, [decoder.batch(i) for i in range(2)])
    del decoder
    release_memory()
    resident = [*trainee.model.parameters(), *trainee.model.buffers()]
    meter = PeakMemory()
    meter.reset()
    rss_before = meter.peak_bytes()
    seconds = []
    with LiveTensorBytes(resident) as live:
        at_entry = live.current
        del resident
        for _ in range(steps):
            started = time.perf_counter()
            trainee.step(batch)
            seconds.append(time.perf_counter() - started)
        after = live.current
    return {"tensor_peak_bytes": live.peak, "tensor_at_entry_bytes": at_entry,
            "tensor_after_steps_bytes": after, "rss_before_bytes": rss_before,
            "rss_peak_bytes": meter.peak_bytes(), "rss_reset_worked": meter.resettable,
            "trainable_parameters": trainee.trainable_parameters(),
            "step_seconds_traced": seconds}


def child(arguments: list[str]) -> dict:
    completed = subprocess.run([sys.executable, "-m", "benchmarks.decoder_step", *arguments],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"child {arguments} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def kept_levers(model: str, levers: list[str]) -> dict:
    """The levers of an earlier decoder_step.json for the same model that this run does not
    measure again (a run of some levers keeps the others' results)."""
    path = RESULTS_DIR / "decoder_step.json"
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    if earlier.get("model") != model:
        return {}
    return {k: v for k, v in earlier.get("levers", {}).items() if k not in levers}


def run(model: str, levers: list[str], rounds: int, warmup: int, repeats: int,
        memory_steps: int) -> dict:
    payload = {"model": model, "batch_size": BATCH_ROWS, "sequence_length": TOKENS,
               "optimizer": "AdamW", "rounds": rounds, "warmup_steps": warmup,
               "timed_steps_per_round": repeats, "memory_steps": memory_steps,
               "descriptions": {n: DESCRIPTIONS[n] for n in COMPETITORS},
               "not_on_int8": NOT_ON_INT8, "levers": kept_levers(model, levers)}
    for lever in levers:
        timing = child(["--time", lever, "--model", model, "--rounds", str(rounds),
                        "--warmup", str(warmup), "--repeats", str(repeats)])
        entry = {}
        for name in runs_under(lever):
            entry[name] = {**timing[name],
                           "memory": child(["--memory", name, lever, "--model", model,
                                            "--memory-steps", str(memory_steps)])}
            print(lever, name, json.dumps(entry[name]["step_seconds"]),
                  entry[name]["memory"]["tensor_peak_bytes"], flush=True)
        payload["levers"][lever] = entry
        write_result("decoder_step", payload)
    return payload


if __name__ == "__main__":  # the children: --time LEVER, or --memory NAME LEVER
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", default=None)
    parser.add_argument("--memory", nargs=2, default=None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-steps", type=int, default=2)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    if arguments.time is not None:
        result = time_lever(arguments.model, arguments.time, arguments.rounds,
                            arguments.warmup, arguments.repeats)
    else:
        result = memory_of(arguments.model, *arguments.memory, arguments.memory_steps)
    print(json.dumps(result))
