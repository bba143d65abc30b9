"""A memory model of decoder training, checked against the measured peaks, then projected.

Peak tensor bytes of one training step (what a GPU's allocator holds; `decoder_step.py`
measures it on the CPU with `tensor_memory.LiveTensorBytes`) as a sum of terms:

- weights: the base's parameters at their precision: fp32 4 bytes; the int8 base 1 byte per
  linear weight entry plus a 4-byte scale per output row (torchao weight-only; embeddings and
  norms stay fp32); nf4 0.5 byte plus a 4-byte scale per 64 entries (bitsandbytes' blocks,
  its second-level quantisation of the scales left out);
- trained values: per trained value, the value and what the method stores beside it
  (indices, masks), its gradient (4) and AdamW's two moments (8); for full fine-tuning the
  weights are the trained values, and at the peak (backward's start) only the output
  embedding has its gradient yet;
- saved activations: per token, per layer, the bytes autograd keeps for backward, as
  coefficients of the layer's widths (hidden, intermediate, key/value width, heads, adapter
  widths), plus the bytes saved outside the layers (the embedding output, the final norm, the
  log-probabilities over the vocabulary). The coefficients are not fitted to any measurement:
  they are counted on a tiny Llama of distinct widths, built by the same builders as the
  benchmark's competitors, by recording every tensor autograd saves in one forward
  (`saved_tensors_hooks`), per method and precision; a layer's share is the difference
  between 2 layers and 1;
- weight copies: a method that forms W + Δ as a new dense tensor and hands it to the matmul
  (PEFT SHiRA) has autograd keep that copy for backward, per linear layer; so does bf16
  autocast, which casts each frozen weight (output embedding included) to bf16 per op and
  keeps the cast for the input's gradient;
- with gradient checkpointing, each layer keeps only its input (hidden × 4 bytes per token),
  and one layer's activations are recomputed at a time, after the loss's transient is freed
  (so they add only what they hold beyond it);
- on the int8 base, its own census on the int8 tiny Llama: what the quantized layers save
  for backward (spadapt's `FrozenQuantizedLinear` saves no dequantized copy of its weight;
  torchao's linear alone would, and the census would count it);
- the loss's transient: the gradients of the log-probabilities and of the logits, two
  tokens × vocabulary × 4-byte tensors alive together at the start of backward.

`python -m benchmarks memory_model` writes results/memory_model.json: the counted
coefficients, the prediction for SmolLM2-135M against every measured peak in
results/decoder_step.json (the target: within 15% for each lever), and the figures for Llama
7B and 70B shapes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch

from .common import RESULTS_DIR, write_result
from .decoder_step import NOT_ON_INT8

LORA_RANK = 8  # the decoder benchmark's PEFT LoRA (all linear layers)
BOTTLENECK = 64  # the sparse recipe's bottleneck width
DENSITY = 0.01  # sparse_delta's and SHiRA's share of the linear weights
METHODS = ("floor", "full", "lora", "shira", "sparse_delta", "sparse")
GIB = 2**30


@dataclass(frozen=True)
class Shape:
    """A Llama-family decoder's dimensions."""

    name: str  # what it is
    layers: int  # decoder layers
    hidden: int  # residual width
    intermediate: int  # MLP width
    heads: int  # attention heads
    kv_heads: int  # key/value heads (grouped-query attention)
    head_dim: int  # width of one head
    vocab: int  # vocabulary
    tied: bool  # output embedding shares the input embedding's weight

    @property
    def kv(self) -> int:
        return self.kv_heads * self.head_dim

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of one layer's linear layers: q, k, v, o, gate, up, down."""
        h, f, q = self.hidden, self.intermediate, self.heads * self.head_dim
        return [(h, q), (h, self.kv), (h, self.kv), (q, h), (h, f), (h, f), (f, h)]

    def linear_entries(self) -> int:
        return self.layers * sum(i * o for i, o in self.linears())

    def other_entries(self) -> int:
        """Embeddings and norms: what stays in full precision on a quantized base."""
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.hidden * (2 * self.layers + 1)

    def parameters(self) -> int:
        return self.linear_entries() + self.other_entries()

    def widths(self) -> dict[str, int]:
        return {"hidden": self.hidden, "intermediate": self.intermediate, "kv": self.kv,
                "heads": self.heads, "one": 1, "vocab": self.vocab, "lora_r": LORA_RANK,
                "bottleneck": BOTTLENECK}


SHAPES = {
    "smollm2-135m": Shape("SmolLM2-135M", 30, 576, 1536, 9, 3, 64, 49152, True),
    "llama-2-7b": Shape("Llama-2-7B", 32, 4096, 11008, 32, 32, 128, 32000, False),
    "llama-2-70b": Shape("Llama-2-70B", 80, 8192, 28672, 64, 8, 128, 32000, False),
}
# the census model: every width distinct, so each saved tensor's width names its kind
TINY = Shape("census Llama", 1, 48, 112, 4, 2, 12, 1000, True)


def trained_values(shape: Shape, method: str) -> int:
    """How many values `method` trains on `shape` (as the decoder benchmark builds it)."""
    linears = shape.linears()
    if method == "floor":
        return 0
    if method == "full":
        return shape.parameters()
    if method == "lora":
        return shape.layers * sum(LORA_RANK * (i + o) for i, o in linears)
    if method == "sparse_delta":
        return round(DENSITY * shape.linear_entries())
    if method == "shira":  # r·(in+out) per layer, r chosen for DENSITY (peft_methods.shira_rank)
        per_rank = sum(i + o for i, o in linears)
        rank = max(1, round(DENSITY * sum(i * o for i, o in linears) / per_rank))
        return shape.layers * rank * per_rank
    if method == "sparse":  # dense down and up weights (pruned entries held at zero), biases
        return shape.layers * (2 * shape.hidden * BOTTLENECK + BOTTLENECK + shape.hidden)
    raise KeyError(method)


# bytes stored per trained value besides its gradient and AdamW's moments: the value, plus
# sparse_delta's int64 flat index and column, SHiRA's two int64 coordinates, the bottleneck's
# bool keep-mask
STORED_PER_VALUE = {"floor": 0, "full": 4, "lora": 4, "shira": 20, "sparse_delta": 20,
                    "sparse": 5}


def weight_bytes(shape: Shape, quantization: str) -> int:
    linear = shape.linear_entries()
    rows = shape.layers * sum(o for _, o in shape.linears())
    per_linear = {"none": 4 * linear, "int8": linear + 4 * rows,
                  "nf4": linear // 2 + 4 * (linear // 64)}[quantization]
    return per_linear + 4 * shape.other_entries()


@dataclass(frozen=True)
class Setting:
    """The levers of one training run, combined as a recipe may combine them."""

    precision: str = "fp32"  # "bf16": the forward under bf16 autocast
    checkpointing: bool = False  # gradient checkpointing
    quantization: str = "none"  # the frozen base: "none", "int8", "nf4"

    @property
    def label(self) -> str:
        parts = [self.quantization] if self.quantization != "none" else []
        parts += [self.precision] if self.precision != "fp32" or not parts else []
        return "+".join(parts + (["checkpointing"] if self.checkpointing else []))


def census(method: str, precision: str, layers: int, quantization: str = "none",
           rows: int = 5, length: int = 8) -> dict[str, float]:
    """Bytes autograd saves in one forward of `method` on the tiny Llama with `layers`
    layers, per token, by the kind of width of each saved tensor (5 rows of 8 tokens: the
    rotary tables, 8 × head_dim, are then not a whole number of elements per token)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from spadapt.train.levers import autocast, quantize_base

    from .decoder_step import build

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=TINY.vocab, hidden_size=TINY.hidden,
                         intermediate_size=TINY.intermediate, num_hidden_layers=layers,
                         num_attention_heads=TINY.heads, num_key_value_heads=TINY.kv_heads,
                         head_dim=TINY.head_dim, tie_word_embeddings=True)
    ids = torch.randint(0, TINY.vocab, (rows, length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    model = build(method, LlamaForCausalLM(config), [batch, batch])
    if quantization != "none":
        quantize_base(model, quantization)
    model.train()
    resident = {id(t.untyped_storage()) for t in [*model.parameters(), *model.buffers()]
                if not hasattr(t, "__tensor_flatten__")}  # a quantized weight: never a copy
    saved: dict[int, tuple[int, int]] = {}  # id(storage) -> (bytes, elements per token)
    keep = []  # the storages, alive until counted, so no id is reused meanwhile
    tokens = rows * length

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.layout != torch.strided or hasattr(tensor, "__tensor_flatten__"):
            return tensor  # SHiRA's sparse delta, or the int8 weight itself: no new bytes
        storage = tensor.untyped_storage()
        if id(storage) not in resident and id(storage) not in saved:
            keep.append(storage)
            saved[id(storage)] = (storage.nbytes(), storage.nbytes() // tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            autocast(precision, "cpu"):
        model(**batch)
    kinds = {width: kind for kind, width in TINY.widths().items()}
    weight_sizes = {i * o for i, o in TINY.linears()}
    by_kind: dict[str, float] = {}
    for nbytes, elements in saved.values():
        if elements in weight_sizes:  # a copy of a linear weight (W + Δ kept for backward)
            entries = layers * sum(i * o for i, o in TINY.linears())
            by_kind["weight_copy"] = by_kind.get("weight_copy", 0.0) + nbytes / entries
            continue
        if elements == TINY.vocab * TINY.hidden:  # a copy of the (output) embedding
            by_kind["embedding_copy"] = nbytes / elements
            continue
        if elements % tokens:  # not per token (rotary tables, scalars): a constant
            by_kind["constant_bytes"] = by_kind.get("constant_bytes", 0) + nbytes
            continue
        width = elements // tokens
        if width not in kinds:
            raise ValueError(f"{method}: a saved tensor of width {width} per token is not "
                             f"one of the census widths {sorted(kinds)}")
        kind = kinds[width]
        by_kind[kind] = by_kind.get(kind, 0.0) + nbytes / (tokens * width)
    return by_kind  # bytes per token per unit of each kind's width; weight_copy: bytes per
    #              linear weight entry of the model; constant_bytes: bytes


CENSUS_KINDS = {"fp32": ("fp32", "none"), "bf16": ("bf16", "none"), "int8": ("fp32", "int8")}


def census_kind(setting: Setting) -> str:
    """Which census a setting's activations follow: bf16 autocast's, the int8 base's, or
    fp32's; an int8 or nf4 base under bf16 takes the bf16 census."""
    if setting.precision == "bf16":
        return "bf16"
    return "int8" if setting.quantization == "int8" else "fp32"


def coefficients(method: str, kind: str) -> dict[str, dict[str, float]]:
    """Saved bytes per token per unit width, per layer and outside the layers, for census
    `kind` (CENSUS_KINDS)."""
    precision, quantization = CENSUS_KINDS[kind]
    one = census(method, precision, 1, quantization)
    two = census(method, precision, 2, quantization)
    kinds = (set(one) | set(two)) - {"constant_bytes", "weight_copy", "embedding_copy"}
    per_layer = {k: two.get(k, 0.0) - one.get(k, 0.0) for k in kinds}
    outside = {k: one.get(k, 0.0) - per_layer[k] for k in kinds}
    return {"per_layer": {k: v for k, v in per_layer.items() if v},
            "outside": {k: v for k, v in outside.items() if v},
            "weight_copy": two.get("weight_copy", 0.0),
            "embedding_copy": two.get("embedding_copy", 0.0),
            "constant_bytes": two.get("constant_bytes", 0.0)}


# the decoder benchmark's levers, one at a time
MEASURED_LEVERS = {"fp32": Setting(), "bf16": Setting(precision="bf16"),
                   "checkpointing": Setting(checkpointing=True),
                   "int8": Setting(quantization="int8")}


def predict(shape: Shape, method: str, setting: Setting, coefficient: dict, rows: int,
            length: int) -> dict[str, float]:
    """Predicted peak tensor bytes by term for `method` under `setting` on `shape`;
    `coefficient`: `coefficients(method, census_kind(setting))`."""
    tokens = rows * length
    widths = shape.widths()

    def per_token(terms: dict[str, float]) -> float:
        return sum(value * widths[kind] for kind, value in terms.items())

    layer = per_token(coefficient["per_layer"])
    outside = per_token(coefficient["outside"])
    values = trained_values(shape, method)
    terms = {"weights": weight_bytes(shape, setting.quantization),
             "trained_values": values * (STORED_PER_VALUE[method] + 4 + 8)}
    if method == "full":  # the weights are the trained values, counted once; at the peak
        # (backward's start) the only gradient yet is the output embedding's
        terms["weights"] = 0
        terms["trained_values"] = values * (4 + 8) + 4 * shape.vocab * shape.hidden
    if setting.checkpointing:  # every layer's fp32 input kept, one layer recomputed at a time
        terms["activations"] = tokens * (shape.layers * 4 * shape.hidden + outside)
    else:
        terms["activations"] = tokens * (shape.layers * layer + outside)
    copies = coefficient["weight_copy"] * shape.linear_entries() \
        / (shape.layers if setting.checkpointing else 1)
    copies += coefficient["embedding_copy"] * shape.vocab * shape.hidden
    if copies:
        terms["weight_copies"] = copies
    terms["loss_transient"] = 2 * tokens * shape.vocab * 4
    if setting.checkpointing:  # a recomputed layer lives after the loss's transient is gone:
        # it adds to the peak only what it holds beyond that transient
        terms["recomputed_layer"] = max(0.0, tokens * layer - terms["loss_transient"])
    terms["total"] = sum(terms.values())
    return terms


def check(measured: dict, coefficient_table: dict) -> dict:
    """Prediction against every measured peak of decoder_step.json."""
    shape = SHAPES["smollm2-135m"]
    rows, length = measured["batch_size"], measured["sequence_length"]
    out = {}
    for lever, entries in measured["levers"].items():
        setting = MEASURED_LEVERS[lever]
        for method, entry in entries.items():
            predicted = predict(shape, method, setting,
                                coefficient_table[census_kind(setting)][method], rows, length)
            peak = entry["memory"]["tensor_peak_bytes"]
            out[f"{lever}/{method}"] = {"predicted_bytes": predicted["total"],
                                        "measured_bytes": peak,
                                        "predicted_over_measured": predicted["total"] / peak,
                                        "terms": predicted}
    return out


# Projections: the measured setting's tokens per step, and lever combinations a user would run
PROJECTION_ROWS, PROJECTION_LENGTH = 8, 256
PROJECTION_SETTINGS = (Setting(), Setting(precision="bf16"),
                       Setting(precision="bf16", checkpointing=True),
                       Setting(precision="bf16", checkpointing=True, quantization="int8"),
                       Setting(precision="bf16", checkpointing=True, quantization="nf4"))
GPUS = {"T4 / RTX 4080 16 GB": 16, "L4 / RTX 4090 24 GB": 24, "A100 40 GB": 40,
        "L40S / A6000 48 GB": 48, "A100 / H100 80 GB": 80, "H200 141 GB": 141}


def smallest_gpu(gib: float) -> str:
    """The smallest GPU of GPUS with 5% to spare for the CUDA context and fragmentation."""
    fits = [name for name, size in GPUS.items() if gib <= size * 0.95]
    return fits[0] if fits else "none alone (shard it: FSDP or ZeRO-3)"


def projections(coefficient_table: dict) -> dict:
    out = {}
    for key in ("llama-2-7b", "llama-2-70b"):
        shape = SHAPES[key]
        for method in ("full", "lora", "sparse_delta", "sparse"):
            for setting in PROJECTION_SETTINGS:
                if method == "full" and setting.quantization != "none":
                    continue  # full fine-tuning trains every weight: nothing to quantize
                terms = predict(shape, method, setting,
                                coefficient_table[census_kind(setting)][method],
                                PROJECTION_ROWS, PROJECTION_LENGTH)
                gib = terms["total"] / GIB
                out[f"{key}/{method}/{setting.label}"] = {
                    "gib": gib, "fits_on": smallest_gpu(gib), "terms": terms}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measured", default=str(RESULTS_DIR / "decoder_step.json"))


def main(args: argparse.Namespace) -> dict:
    from spadapt.quantize import quiet_torchao

    with quiet_torchao():
        table = {kind: {method: coefficients(method, kind) for method in METHODS
                        if not (kind == "int8" and method in NOT_ON_INT8)}
                 for kind in CENSUS_KINDS}
    with open(args.measured) as handle:
        measured = json.load(handle)
    payload = {"shapes": {k: asdict(v) for k, v in SHAPES.items()},
               "census_shape": asdict(TINY), "coefficients": table,
               "check": check(measured, table),
               "projection_setting": {"rows": PROJECTION_ROWS, "length": PROJECTION_LENGTH},
               "projections": projections(table)}
    write_result("memory_model", payload)
    return payload
