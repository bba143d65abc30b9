"""The decoder's cost sections of BENCHMARKS.md: training step and memory per lever
(decoder_step.json), generation speed (generation.json) and the memory model against the
measured peaks, with its 7B/70B projections (memory_model.json); each with its targets."""

from __future__ import annotations

from spadapt.report import fmt

from .tables import machine_line, range_text, verdict

GIB = 2**30


def step_section(result: dict) -> list[str]:
    levers = result["levers"]
    lines = [f"## Decoder training step per lever ({result['model']})", "",
             f"{result['batch_size']} rows × {result['sequence_length']} tokens, AdamW; per "
             f"lever one process times its competitors interleaved ({result['rounds']} "
             f"rounds, {result['warmup_steps']} warm-up + {result['timed_steps_per_round']} "
             "timed step each); ratios round by round against the same lever's floor and "
             "LoRA. Tensor peak: live tensor bytes over "
             f"{result['memory_steps']} steps in a fresh process (weights, activations, "
             "gradients, optimizer state: what a GPU's allocator would hold); resident: the "
             "process's high-water mark (runtime and allocator slack included). "
             f"{machine_line(result)}.", "",
             "| lever | competitor | trained values | step | × floor | × LoRA | tensor peak "
             "| resident peak |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for lever, entries in levers.items():
        for name, entry in entries.items():
            memory = entry["memory"]
            lines.append(
                f"| {lever} | {name} | {fmt.count(entry['trainable_parameters'])} | "
                f"{entry['step_seconds']['median']:.2f} s | "
                f"{range_text(entry['ratio_to_floor'], 2)} | "
                f"{range_text(entry['ratio_to_lora'], 2)} | "
                f"{fmt.size(memory['tensor_peak_bytes'])} | "
                f"{fmt.size(memory['rss_peak_bytes'])} |")
    lines += ["", *step_targets(levers), ""]
    return lines


def step_targets(levers: dict) -> list[str]:
    lines = []
    fp32 = levers.get("fp32", {})
    if {"sparse_delta", "lora"} <= set(fp32):
        delta = fp32["sparse_delta"]
        floor = delta["ratio_to_floor"]["median"]
        lora = delta["ratio_to_lora"]["median"]
        peak = delta["memory"]["tensor_peak_bytes"] / fp32["lora"]["memory"]["tensor_peak_bytes"]
        lines += [f"- sparse_delta step {floor:.2f} × the floor (bar ≤ 1.25): "
                  f"{verdict(floor, 1.25)}; {lora:.2f} × PEFT LoRA's (bar ≤ 0.8): "
                  f"{verdict(lora, 0.8)}; tensor peak {peak:.2f} × LoRA's (bar ≤ 1): "
                  f"{verdict(peak, 1.0)}."]
    int8 = levers.get("int8", {})
    for name in ("sparse_delta", "sparse", "lora"):
        if name in int8 and name in fp32:
            tensor = (int8[name]["memory"]["tensor_peak_bytes"]
                      / fp32[name]["memory"]["tensor_peak_bytes"])
            resident = int8[name]["memory"]["rss_peak_bytes"] / fp32[name]["memory"][
                "rss_peak_bytes"]
            lines.append(f"- int8 base, {name}: tensor peak {tensor:.2f} × the fp32 base's "
                         f"(bar ≤ 0.45): {verdict(tensor, 0.45)}; resident {resident:.2f} ×.")
    checkpointed = levers.get("checkpointing", {})
    for name in ("sparse_delta", "lora"):
        if name in checkpointed and name in fp32:
            peak = (checkpointed[name]["memory"]["tensor_peak_bytes"]
                    / fp32[name]["memory"]["tensor_peak_bytes"])
            step = (checkpointed[name]["step_seconds"]["median"]
                    / fp32[name]["step_seconds"]["median"])
            lines.append(f"- gradient checkpointing, {name}, at this length: tensor peak "
                         f"{peak:.2f} × without (bar ≤ 0.6, set at 512 tokens: see the "
                         f"levers section): {verdict(peak, 0.6)}; step {step:.2f} × (bar ≤ "
                         f"1.4; medians of two processes): {verdict(step, 1.4)}.")
    return lines


def generation_section(result: dict) -> list[str]:
    calls = result["calls"]
    lines = [f"## Decoder generation speed ({result['model']})", "",
             f"{result['prompts']} chat-templated prompts ({result['prompt_tokens']} prompt "
             f"tokens, padded to {result['padded_width']}), {result['new_tokens']} new tokens "
             "each, greedy, KV cache; every call timed interleaved over "
             f"{result['rounds']} rounds; {result['adapters_resident']} adapters resident on "
             "each adapted model. single: every row through the active adapter; routed_one: "
             "every row named to one adapter (`adapter_names`); mixed: row i to adapter i. "
             f"{machine_line(result)}.", "",
             "| call | tokens/s | × base (throughput) |", "|---|---:|---:|"]
    for name, entry in calls.items():
        lines.append(f"| {name} | {entry['tokens_per_second']:.1f} | "
                     f"{range_text(entry['throughput_ratio_to_base'], 2)} |")
    lines.append("")
    for method in ("sparse_delta", "sparse"):
        mixed = calls.get(f"{method}_mixed")
        if mixed:
            ratio = mixed["throughput_ratio_to_routed_one"]["median"]
            single = mixed["throughput_ratio_to_single"]["median"]
            lines.append(f"- {method}, 8 adapters in one batch: {ratio:.2f} × the tokens/s of "
                         f"the same batch routed to one adapter (bar ≥ 0.8): "
                         f"{verdict(ratio, 0.8, higher_is_better=True)}; {single:.2f} × the "
                         "active adapter's without routing.")
    merged = calls.get("sparse_delta_merged")
    if merged:
        ratio = merged["throughput_ratio_to_base"]
        within = abs(ratio["median"] - 1) <= 0.05
        lines.append(f"- merged sparse_delta: {range_text(ratio, 2)} × the base's tokens/s "
                     f"(bar: the base's within noise, here ±5% of the median): "
                     f"{'**met**' if within else '**missed**'}.")
    return lines + [""]


def memory_model_section(result: dict) -> list[str]:
    lines = ["## Decoder memory model", "",
             "`python -m benchmarks memory_model` (benchmarks/memory_model.py says every term): "
             "peak = weights at their precision + trained values with their gradients and "
             "AdamW moments + saved activations (per token, per layer, counted on a tiny "
             "Llama by recording what autograd saves, per method and precision; not fitted "
             "to these measurements) + weight copies some paths keep (bf16 casts, SHiRA's "
             "W + Δ) + the loss's two vocabulary-wide gradients. Against every measured "
             "tensor peak of the step table (bar: within 15%):", "",
             "| lever / competitor | predicted | measured | predicted / measured | verdict |",
             "|---|---:|---:|---:|---|"]
    worst = 0.0
    for key, entry in result["check"].items():
        ratio = entry["predicted_over_measured"]
        worst = max(worst, abs(ratio - 1))
        lines.append(f"| {key} | {fmt.size(entry['predicted_bytes'])} | "
                     f"{fmt.size(entry['measured_bytes'])} | {ratio:.3f} | "
                     f"{verdict(abs(ratio - 1), 0.15)} |")
    setting = result["projection_setting"]
    lines += ["", f"Largest error {100 * worst:.1f}%.", "",
              f"### Projected to Llama-2 shapes ({setting['rows']} rows × {setting['length']} "
              "tokens a step)", "",
              "The frozen base is held in fp32 under bf16 autocast (spadapt's `precision: "
              "bf16`), int8 by torchao, nf4 as bitsandbytes stores it (0.5 byte + a 4-byte "
              "scale per 64 entries). The GPU named is the smallest with 5% to spare.", "",
              "| model | method | setting | predicted peak | weights | activations | "
              "trained values + state | smallest GPU |", "|---|---|---|---:|---:|---:|---:|---|"]
    for key, entry in result["projections"].items():
        model, method, setting_label = key.split("/")
        terms = entry["terms"]
        lines.append(f"| {model} | {method} | {setting_label} | {entry['gib']:.1f} GiB | "
                     f"{terms['weights'] / GIB:.1f} | {terms['activations'] / GIB:.1f} | "
                     f"{terms['trained_values'] / GIB:.2f} | {entry['fits_on']} |")
    lines += ["", "Published figures beside them: QLoRA (Dettmers et al. 2023) fine-tunes a "
              "65B model on one 48 GB GPU with an nf4 base, paged optimizers and "
              "checkpointing; torchtune's QLoRA tutorial trains Llama-2-7B in under 10 GB. "
              "Their bases compute in bf16 from 4-bit weights, with LoRA adapters of a few "
              "million values; the rows above with an nf4 base and checkpointing are the ones "
              "to compare.", ""]
    return lines
