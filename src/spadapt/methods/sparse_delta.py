"""Sparse deltas: trainable values at k chosen positions of a frozen linear weight.

y = x (W + Δ)ᵀ + b, where Δ is zero except at k positions (sparse fine-tuning in the spirit of
diff pruning, Guo et al. ACL 2021, and SpIEL, Ansell et al. 2024). Positions are chosen at
attach by a scorer on the base weight W (random, magnitude, SNIP, GraSP, Fisher) with an exact
budget; schedule "regrow" moves them during training, schedule "lottery" picks them after a
dense phase (a dense delta, `start_dense_phase`/`end_dense_phase`).

Training never forms a dense gradient for W: `SparseDeltaLinear` computes ∂L/∂values with a
sampled dense-dense product (SDDMM, `torch.sparse.sampled_addmm`), i.e. (gᵀx) only at the k
positions; its forward adds the values into one weight-sized copy of W. Merge writes W + Δ into
the base weight after saving the original values at the touched positions; unmerge writes those
originals back, so the base returns bit-exactly (no subtraction).

A batch whose rows go to different adapters runs each group of rows once, through its own
adapter's W + Δ (rows routed to the base through W): one dense product over the batch in all,
plus one weight copy per adapter, never a base pass over every row and a second pass per adapter.
Decoding (no autograd, a few tokens) instead runs the base product over every row and adds
x Δᵀ: for a mixed batch, one product of the groups' deltas stacked (`StackedDeltas`).

Positions are stored in the canonical (out_features, in_features) layout, also for GPT-2's
`Conv1D` whose weight is (in, out).
"""

from __future__ import annotations

import math
import re
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import architecture_of, unknown_architecture_error
from ..config import AdapterConfig
from ..masks.masked import MaskedWeight
from ..quantize import dequantized, is_quantized
from .base import Method, SitePlan, SiteWrapper, StoredTensor


def is_conv1d(module: nn.Module) -> bool:
    """GPT-2's transformers.pytorch_utils.Conv1D: weight (in, out), y = x W + b."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def canonical_weight(layer: nn.Module) -> torch.Tensor:
    """The layer's weight as (out_features, in_features) (a view, transposed for Conv1D)."""
    return layer.weight.t() if is_conv1d(layer) else layer.weight


FULL_PRECISION = (torch.float32, torch.float64)  # dtypes whose products are not upcast


def _sddmm_values(grad_out: torch.Tensor, x: torch.Tensor, crow: torch.Tensor,
                  cols: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(grad_outᵀ x) at the CSR positions (crow, cols) only: shape (k,), row-major order, in
    grad_out's dtype. Half-precision inputs (bf16 autocast) are sampled in fp32: the sampled
    product costs k dot products, where a dense product would cost a weight gradient."""
    dtype = grad_out.dtype
    if dtype not in FULL_PRECISION:
        grad_out = grad_out.float()
    x = x.to(grad_out.dtype)
    template = _csr(crow, cols, torch.zeros(cols.numel(), dtype=grad_out.dtype,
                                            device=grad_out.device), shape)
    product = torch.sparse.sampled_addmm(template, grad_out.t(), x, beta=0.0, alpha=1.0)
    return product.values().to(dtype)


def _csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    """The CSR matrix of `values` at (crow, cols), without torch's beta warning."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta", on every call
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)


def _csr_mm(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """`matrix` (CSR) @ `dense` in the matrix's dtype, outside autocast: bf16 autocast would
    cast the CSR matrix, and CPU has no bf16 CSR product ("addmm_out_sparse_csr_impl_mkl")."""
    with torch.autocast(device_type=dense.device.type, enabled=False):
        return torch.sparse.mm(matrix, dense)


class SparseDeltaLinear(torch.autograd.Function):
    """y = x (W + Δ)ᵀ + b with gradients for x and the k values of Δ; for W only when W
    requires grad (data-driven mask scorers score the frozen weight: a dense product, once)."""

    @staticmethod
    def forward(ctx, x, weight, bias, values, indices, crow, cols, transposed, probe=None,
                dense=None, dense_scale=1.0):
        effective = _effective_weight(weight, values, indices, transposed, dense, dense_scale)
        ctx.save_for_backward(x, weight, values, indices, crow, cols, dense)
        ctx.transposed = transposed
        ctx.probe = probe
        ctx.dense_scale = dense_scale
        return F.linear(x, effective, bias)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, values, indices, crow, cols, dense = ctx.saved_tensors
        grad_x = grad_weight = grad_values = grad_dense = None
        wants_dense = ctx.needs_input_grad[9]
        row_squares = isinstance(ctx.probe, RowSquaresProbe)
        if row_squares:  # fisher: per-row squared gradients instead of the batch's gradient
            ctx.probe.add_rows(grad_y, x)
        regrow = ctx.probe is not None and not row_squares
        wants_weight = ctx.needs_input_grad[1] and not row_squares
        if wants_weight or regrow or wants_dense:
            g2 = grad_y.reshape(-1, grad_y.shape[-1])
            grad_canonical = g2.t() @ x.reshape(-1, x.shape[-1]).to(g2.dtype)
            if ctx.needs_input_grad[3] and grad_canonical.dtype in FULL_PRECISION:
                # the values' gradient is in the dense one already: no sampled product
                grad_values = grad_canonical.view(-1)[indices].to(values.dtype)
            if regrow:  # keep the top candidates, free the rest now
                ctx.probe.add(grad_canonical, indices)
            if wants_weight:
                grad_weight = grad_canonical.t() if ctx.transposed else grad_canonical
            if wants_dense:  # lottery's dense phase: the gradient of a dense delta
                grad_dense = (grad_canonical * ctx.dense_scale).to(dense.dtype)
            del grad_canonical
        if ctx.needs_input_grad[0]:
            effective = _effective_weight(weight, values, indices, ctx.transposed, dense,
                                          ctx.dense_scale)
            # autocast's forward gives a bf16 grad_y; a backward run outside autocast (as
            # PyTorch recommends) must not meet the fp32 weight with it
            grad_x = (grad_y @ effective.to(grad_y.dtype)).to(x.dtype)
        if ctx.needs_input_grad[3] and grad_values is None:
            g2 = grad_y.reshape(-1, grad_y.shape[-1])
            x2 = x.reshape(-1, x.shape[-1])
            shape = (weight.shape[1], weight.shape[0]) if ctx.transposed else tuple(weight.shape)
            grad_values = _sddmm_values(g2, x2, crow, cols, shape)
            grad_values = grad_values.to(values.dtype)
        return (grad_x, grad_weight, None, grad_values, None, None, None, None, None,
                grad_dense, None)


def _effective_weight(weight: torch.Tensor, values: torch.Tensor, indices: torch.Tensor,
                      transposed: bool, dense: torch.Tensor | None,
                      dense_scale: float) -> torch.Tensor:
    """W + Δ in the canonical (out, in) layout, as one new contiguous tensor (plus
    dense_scale × a dense delta during schedule "lottery"'s dense phase). A quantized W
    (`spadapt.quantize`) is dequantized first."""
    if is_quantized(weight):  # a quantized base: Δ is added to its dequantized values
        effective = dequantized(weight)
        effective = (effective.t() if transposed else effective).contiguous()
    else:
        canonical = weight.t() if transposed else weight
        effective = canonical.clone(memory_format=torch.contiguous_format)
    if dense is not None:
        effective.add_(dense.to(effective.dtype), alpha=dense_scale)
    effective.view(-1).index_add_(0, indices, values.to(effective.dtype))
    return effective


class RegrowProbe:
    """What an armed sparse delta collects in one step's backward (schedule "regrow"): the
    `count` positions it does not keep where |∂L/∂W| is largest, summed over micro-batches
    (each micro-batch contributes its own top `count`)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.positions: torch.Tensor | None = None  # flat positions, best first
        self.scores: torch.Tensor | None = None

    @torch.no_grad()
    def add(self, grad: torch.Tensor, kept: torch.Tensor) -> None:
        """Fold in one micro-batch's dense gradient of the canonical (out, in) weight."""
        scores = grad.abs().flatten().float()
        scores[kept] = -math.inf  # a kept position is never a candidate
        take = min(self.count, scores.numel() - kept.numel())
        top = torch.topk(scores, take)
        positions, values = top.indices, top.values
        if self.positions is not None:
            positions, inverse = torch.unique(torch.cat([self.positions, positions]),
                                              return_inverse=True)
            values = torch.zeros(positions.numel(), device=values.device).scatter_add_(
                0, inverse, torch.cat([self.scores, values]))
            top = torch.topk(values, take)
            positions, values = positions[top.indices], top.values
        self.positions, self.scores = positions, values


class RowSquaresProbe:
    """What a sparse delta armed for Fisher scoring collects in backward: Σ over the batch's
    rows of (∂L_row/∂W)², in the canonical (out, in) layout. A row's gradient of a linear
    weight is Σ_t g_t x_tᵀ over its tokens (g = ∂L_row/∂y), so one backward of the sum of the
    rows' losses gives every row's gradient, as long as rows do not interact (eval mode)."""

    def __init__(self, shape: tuple[int, int], device: torch.device,
                 rows_per_chunk: int = 8) -> None:
        self.sums = torch.zeros(shape, dtype=torch.float32, device=device)
        self.rows_per_chunk = rows_per_chunk  # bounds the (rows, out, in) tensor of one chunk

    @torch.no_grad()
    def add_rows(self, grad_y: torch.Tensor, x: torch.Tensor) -> None:
        g = grad_y.float().reshape(grad_y.shape[0], -1, grad_y.shape[-1])  # (rows, T, out)
        x = x.float().reshape(x.shape[0], -1, x.shape[-1])  # (rows, T, in)
        for start in range(0, g.shape[0], self.rows_per_chunk):
            rows = slice(start, start + self.rows_per_chunk)
            per_row = torch.bmm(g[rows].transpose(1, 2), x[rows])  # (chunk, out, in)
            self.sums += per_row.square_().sum(0)


# Without autograd, x Δᵀ as a CSR product beats forming W + Δ up to about this many tokens in
# one call (SmolLM2's 576 × 1536 layers at 1% on 2 CPU cores: 0.29 against 0.42 ms at 8
# tokens, even at 64, 2.2 against 1.9 ms at 128); above it the copy is cheaper.
SPARSE_PRODUCT_MAX_TOKENS = 64


def sparse_product_pays(x: torch.Tensor) -> bool:
    """Whether a forward on `x` should add x Δᵀ rather than form W + Δ: no autograd, and
    few tokens (a decoding step)."""
    return not torch.is_grad_enabled() and x.numel() // max(1, x.shape[-1]) \
        <= SPARSE_PRODUCT_MAX_TOKENS


class SparseDelta(nn.Module):
    """k trainable values at sorted flat positions of one (out, in) weight."""

    def __init__(self, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.shape = shape  # canonical (out_features, in_features)
        self.values = nn.Parameter(torch.zeros(0, dtype=dtype, device=device))
        self.register_buffer("indices", torch.zeros(0, dtype=torch.long, device=device))
        self.register_buffer("crow", torch.zeros(shape[0] + 1, dtype=torch.long, device=device))
        self.register_buffer("cols", torch.zeros(0, dtype=torch.long, device=device))
        self.register_buffer("merged_original", None)  # base values at indices while merged
        self.probe: RegrowProbe | RowSquaresProbe | None = None  # armed by the "regrow"
        #                                  schedule for one step, or for Fisher scoring
        self.register_parameter("dense", None)  # a dense delta while "lottery" trains densely
        self.dense_scale = 1.0  # the dense delta adds dense_scale × `dense` to the weight

    @property
    def merged(self) -> bool:
        return self.merged_original is not None

    def set_positions(self, positions: torch.Tensor) -> None:
        """positions: sorted unique flat indices into the canonical (out, in) weight."""
        self._index(positions)
        self.values = nn.Parameter(torch.zeros(self.indices.numel(), dtype=self.values.dtype,
                                               device=self.indices.device))

    def _index(self, positions: torch.Tensor) -> None:
        device = self.indices.device
        positions = positions.to(device=device, dtype=torch.long)
        self.indices = positions
        self.cols = positions % self.shape[1]
        counts = torch.bincount(positions // self.shape[1], minlength=self.shape[0])
        self.crow = torch.cat([torch.zeros(1, dtype=torch.long, device=device), counts.cumsum(0)])

    def arm_regrow(self, count: int) -> None:
        """Collect `count` regrowth candidates in the next backward (0: disarm)."""
        self.probe = RegrowProbe(count) if count > 0 else None

    def arm_row_squares(self) -> None:
        """Collect Σ over rows of (∂L_row/∂W)² in every backward until `take_row_squares`."""
        self.probe = RowSquaresProbe(self.shape, self.indices.device)

    def take_row_squares(self, base_layer: nn.Module) -> dict[str, torch.Tensor]:
        """What `arm_row_squares` collected, keyed and laid out as `score_targets`; disarms."""
        probe, self.probe = self.probe, None
        if not isinstance(probe, RowSquaresProbe):
            raise RuntimeError("take_row_squares() without arm_row_squares()")
        return {"delta": probe.sums.t() if is_conv1d(base_layer) else probe.sums}

    @torch.no_grad()
    def apply_regrow(self, optimizer_state: dict | None) -> bool:
        """Drop the kept positions of smallest |value| and regrow as many at the probe's
        candidates (after an optimizer step); the values and their optimizer state follow
        their positions, regrown ones start at zero. False if there was nothing to do."""
        probe, self.probe = self.probe, None
        if probe is None or probe.positions is None or self.merged:
            return False
        count = min(probe.count, probe.positions.numel(), self.values.numel())
        if count == 0:
            return False
        order = torch.sort(self.values.abs(), stable=True).indices
        kept_slots = order[count:].sort().values
        positions = torch.cat([self.indices[kept_slots], probe.positions[:count]])
        positions, arrangement = torch.sort(positions)
        source = torch.cat([kept_slots, kept_slots.new_full((count,), -1)])[arrangement]

        def follow(tensor: torch.Tensor) -> torch.Tensor:
            moved = torch.zeros_like(tensor)
            moved[source >= 0] = tensor[source[source >= 0]]
            return moved

        for value in (optimizer_state or {}).values():
            if torch.is_tensor(value) and value.shape == self.values.shape:
                value.copy_(follow(value))
        self.values.copy_(follow(self.values))
        self._index(positions)
        return True

    def start_dense_phase(self, scale: float = 1.0) -> None:
        """Train a dense delta of the whole weight until `end_dense_phase` (schedule
        "lottery"); the sparse values stay at zero meanwhile. The weight gets scale × the
        parameter, so that under Adam (whose steps do not depend on the gradient's size) the
        dense phase trains at `scale` × the optimizer's learning rate."""
        self.dense = nn.Parameter(torch.zeros(self.shape, dtype=self.values.dtype,
                                              device=self.values.device))
        self.dense_scale = float(scale)

    @torch.no_grad()
    def end_dense_phase(self, optimizer_state: dict | None, rewind: bool = True) -> None:
        """Keep this delta's number of positions where the dense delta moved most, then drop
        the dense delta and its optimizer state. rewind: the kept values restart at zero
        (LT-SFT's reset); otherwise they keep the dense delta's values. The values' optimizer
        state starts afresh either way."""
        dense = self.dense
        if dense is None:
            return
        count = self.values.numel()
        positions = torch.topk(dense.detach().abs().flatten().float(), count,
                               sorted=False).indices.sort().values
        self._index(positions)
        self.values.copy_(torch.zeros_like(self.values) if rewind else
                          (self.dense_scale * dense.detach().flatten()[positions]).to(
                              self.values.dtype))
        if optimizer_state is not None:
            optimizer_state.pop(self.values, None)
            optimizer_state.pop(dense, None)
        self.drop_dense_phase()

    def drop_dense_phase(self) -> None:
        """Free the dense delta without choosing positions (a resumed run whose checkpoint
        already holds them)."""
        dense, self.dense = self.dense, None
        if dense is not None:  # the optimizer's parameter list may still hold this tensor:
            dense.grad = None  # emptied, it costs nothing and receives no gradient
            dense.data = torch.zeros(0, dtype=dense.dtype, device=dense.device)

    def linear(self, x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        """y = layer(x) with this delta added to the layer's weight. Without autograd, on a
        few tokens (decoding), the delta is a sparse product added to the layer's output, so
        no copy of W is made for a token; on more, W + Δ is formed once (cheaper there)."""
        if sparse_product_pays(x) and self.dense is None:
            out = layer(x)
            return out + self.product(x).to(out.dtype)
        probe = self.probe if torch.is_grad_enabled() else None
        values = self.values if self.dense is None else self.values.detach()
        return SparseDeltaLinear.apply(x, layer.weight, layer.bias, values, self.indices,
                                       self.crow, self.cols, is_conv1d(layer), probe,
                                       self.dense, self.dense_scale)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """x Δᵀ, (..., in) → (..., out), as a CSR product over the k values (no gradient)."""
        delta = _csr(self.crow, self.cols, self.values.detach(), self.shape)
        rows = x.reshape(-1, x.shape[-1]).to(self.values.dtype)
        out = _csr_mm(delta, rows.t()).t()
        return out.reshape(*x.shape[:-1], self.shape[0])

    def delta_dense(self) -> torch.Tensor:
        """Δ as a dense (out, in) tensor (for tests and hand checks)."""
        flat = torch.zeros(self.shape[0] * self.shape[1], dtype=self.values.dtype,
                           device=self.values.device)
        flat[self.indices] = self.values.detach()
        return flat.view(self.shape)

    @torch.no_grad()
    def merge(self, layer: nn.Module) -> None:
        weight = canonical_weight(layer)
        rows = self.indices // self.shape[1]
        original = weight[rows, self.cols].clone()
        weight[rows, self.cols] = original + self.values.to(weight.dtype)
        self.merged_original = original

    @torch.no_grad()
    def unmerge(self, layer: nn.Module) -> None:
        weight = canonical_weight(layer)
        weight[self.indices // self.shape[1], self.cols] = self.merged_original
        self.merged_original = None

    # AdapterModule protocol ------------------------------------------------------------
    def score_targets(self, base_layer: nn.Module) -> dict[str, torch.Tensor]:
        return {"delta": base_layer.weight}

    def apply_masks(self, masks: dict[str, torch.Tensor], base_layer: nn.Module) -> None:
        mask = masks["delta"]
        if is_conv1d(base_layer):
            mask = mask.t()
        self.set_positions(mask.contiguous().flatten().nonzero().flatten())

    def finish_init(self) -> None:
        pass

    def masked_weights(self) -> dict[str, MaskedWeight]:
        return {}

    def synflow_chain(self) -> list[str]:
        return []

    def export(self) -> dict[str, StoredTensor]:
        return {"delta": StoredTensor(self.shape, self.values.detach(), self.indices)}

    @torch.no_grad()
    def import_(self, tensors: dict[str, StoredTensor], base_layer: nn.Module) -> None:
        stored = tensors["delta"]
        positions = stored.positions
        if positions is None:
            positions = torch.arange(self.shape[0] * self.shape[1])
        self.set_positions(positions)
        self.values.copy_(stored.values.to(self.values.dtype))


class SparseDeltaSite(SiteWrapper):
    """Wraps one nn.Linear / Conv1D and adds the routed adapters' sparse deltas."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = [(name, rows) for name, rows in self.groups((x,), {})
                  if not self.adapters[name].merged]
        if not groups:
            return self.base_layer(x)
        if len(groups) == 1 and groups[0][1] is None:
            return self.adapters[groups[0][0]].linear(x, self.base_layer)
        if sparse_product_pays(x) and all(self.adapters[n].dense is None for n, _ in groups):
            # decoding: one base product for every row, the groups' sparse products added
            out = self.base_layer(x)
            tokens = x.numel() // x.shape[-1]
            if len(groups) * tokens <= STACKED_PRODUCT_MAX_PAIRS and all(
                    rows is not None for _, rows in groups):
                rows, part = self._stacked(groups, x.shape[0]).product(x)
                return out.index_add_(0, rows, part.to(out.dtype))
            for name, rows in groups:
                if rows is None:
                    out = out + self.adapters[name].product(x).to(out.dtype)
                else:
                    part = self.adapters[name].product(x.index_select(0, rows))
                    out.index_add_(0, rows, part.to(out.dtype))
            return out
        covered = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        parts = []
        for name, rows in groups:
            covered[rows] = True
            parts.append((rows, self.adapters[name].linear(x.index_select(0, rows),
                                                           self.base_layer)))
        base_rows = (~covered).nonzero().flatten()
        if base_rows.numel():
            parts.append((base_rows, self.base_layer(x.index_select(0, base_rows))))
        # One concatenation and one gather back into row order (not a copy of the whole
        # output per group).
        order = torch.cat([rows for rows, _ in parts])
        return torch.cat([part for _, part in parts]).index_select(0, order.argsort())

    def _stacked(self, groups: list[tuple[str, torch.Tensor]], batch: int) -> StackedDeltas:
        """The groups' deltas as one StackedDeltas, kept until a delta or the routing changes."""
        deltas = [self.adapters[name] for name, _ in groups]
        cached = getattr(self, "_stacked_deltas", None)
        if cached is None or not cached.built_from(deltas, groups, batch):
            cached = self._stacked_deltas = StackedDeltas(deltas, groups, batch)
        return cached


# A decoding step whose rows go to several adapters multiplies every group's delta with every
# token in one stacked sparse product, and each row keeps its own adapter's block: G × the
# sparse work of one adapter, in one call instead of G. Used while groups × tokens is at
# most this (SmolLM2, 8 adapters × 8 rows × 1 token: 64).
STACKED_PRODUCT_MAX_PAIRS = 256


class StackedDeltas:
    """Several adapters' deltas on one weight stacked into one CSR matrix (G·out, in), with
    which rows of a batch read which block (for a mixed decoding step). It holds a copy of
    the G deltas' values and int32 positions, until the site's next routing replaces it."""

    def __init__(self, deltas: list[SparseDelta], groups: list[tuple[str, torch.Tensor]],
                 batch: int) -> None:
        # what it was built from, held so that identity checks cannot meet a reused address
        self.sources = [(d.indices, d.values, d.values._version, rows)
                        for d, (_, rows) in zip(deltas, groups, strict=True)]
        self.batch = batch
        out_features, in_features = deltas[0].shape
        starts = [0]
        for delta in deltas:
            starts.append(starts[-1] + delta.values.numel())
        crow = torch.cat([delta.crow[:-1] + start
                          for delta, start in zip(deltas, starts[:-1], strict=True)]
                         + [deltas[0].crow.new_tensor([starts[-1]])])
        cols = torch.cat([d.cols for d in deltas])
        if starts[-1] < 2**31:  # int32 indices: half the copy, and a faster product on CPU
            crow, cols = crow.to(torch.int32), cols.to(torch.int32)
        self.matrix = _csr(crow, cols, torch.cat([d.values.detach() for d in deltas]),
                           (len(deltas) * out_features, in_features))
        self.groups = len(deltas)
        self.out_features = out_features
        self.rows = torch.cat([rows for _, rows in groups])  # the routed rows, group by group
        self.blocks = torch.cat([torch.full_like(rows, g) for g, (_, rows) in enumerate(groups)])

    def built_from(self, deltas: list[SparseDelta], groups: list[tuple[str, torch.Tensor]],
                   batch: int) -> bool:
        return batch == self.batch and len(deltas) == len(self.sources) and all(
            d.indices is indices and d.values is values and d.values._version == version
            and group_rows is rows
            for d, (_, group_rows), (indices, values, version, rows)
            in zip(deltas, groups, self.sources, strict=True))

    def product(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, x_r Δ_{g(r)}ᵀ for those rows): (n,) and (n, ..., out), without autograd."""
        flat = x.reshape(-1, x.shape[-1]).to(self.matrix.dtype)  # (batch · tokens, in)
        every = _csr_mm(self.matrix, flat.t())  # (G · out, batch · tokens)
        every = every.view(self.groups, self.out_features, self.batch, -1)
        part = every[self.blocks, :, self.rows, :].transpose(1, 2)  # (n, tokens, out)
        return self.rows, part.reshape(self.rows.numel(), *x.shape[1:-1], self.out_features)


def plan_sparse_delta(table: dict[str, list[tuple[str, nn.Module]]], model: nn.Module,
                      config: AdapterConfig) -> list[SitePlan]:
    if config.target_modules is not None:
        patterns = config.target_modules
    else:
        spec = architecture_of(model)
        if spec is None:
            raise unknown_architecture_error(model)
        patterns = [spec.linear_targets]
    names = []
    for name, chain in table.items():
        if any(re.search(p, name) for p in patterns):
            inner = chain[-1][1]
            if not (isinstance(inner, nn.Linear) or is_conv1d(inner)):
                raise ValueError(
                    f"sparse_delta target {name!r} is a {type(inner).__name__}, not an nn.Linear "
                    "or Conv1D; narrow target_modules to linear layers"
                )
            names.append(name)
    return [SitePlan(name, "linear") for name in names]


def build_sparse_delta(plan: SitePlan, base_layer: nn.Module, config: AdapterConfig,
                       hidden: int) -> SparseDelta:
    weight = canonical_weight(base_layer)
    return SparseDelta(tuple(weight.shape), weight.dtype, weight.device)


SPARSE_DELTA = Method("sparse_delta", plan_sparse_delta, build_sparse_delta, SparseDeltaSite)
