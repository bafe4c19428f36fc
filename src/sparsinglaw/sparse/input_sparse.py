"""Input-sparse projections on CPU for decode at batch 1-4 (TEAL-style input sparsity).

A projection ``y = W x`` with inputs dropped needs only the kept inputs' columns of ``W``, so
``InputSparseLinear`` keeps a contiguous ``W^T`` and reads only their rows: in the C kernel
``input_sparse.c`` (``SPARSINGLAW_NATIVE=0`` disables it) or with ``index_select``. The output equals
``W (x * keep) + b`` up to float rounding; past the ``SparsePolicy``'s ``max_share`` of kept inputs or
``max_tokens`` tokens (``InputSparseLinear.DEFAULT_POLICY`` where none is given) the masked dense product
runs instead. ``sparsify_inputs`` swaps a model's projections for input, combined (the FFN rule as a second
keep rule on each down projection) or ``inputs.MethodResult`` thresholds::

    handle = sparsify_inputs(model, load_thresholds("inputs.json"))
    ...decode...
    handle.restore()"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.native_build import pointer
from sparsinglaw.sparse.modules import CallCounts, SparsePolicy, SwappedModules, resolve_policy
from sparsinglaw.sparse.native import projection_kernels

MAX_TOKENS = 4  # as in input_sparse.c


class _Projection(ctypes.Structure):
    """``projection_t`` of input_sparse.c: a projection's fixed arguments, filled once."""

    _fields_ = [("din", ctypes.c_int), ("dout", ctypes.c_int), ("max_union", ctypes.c_int), ("pad", ctypes.c_int),
                ("wt", ctypes.c_void_p), ("norms", ctypes.c_void_p), ("norms2", ctypes.c_void_p),
                ("threshold", ctypes.c_float), ("threshold2", ctypes.c_float), ("index", ctypes.c_void_p),
                ("pairs", ctypes.c_int64), ("masked", ctypes.c_void_p)]


@dataclass
class Counters(CallCounts):
    """``CallCounts`` of one projection (units: its inputs), the union of kept inputs over sparse calls and
    the weight columns read."""

    kept_inputs: int = 0  # summed over sparse calls: union of kept inputs
    offered_inputs: int = 0  # summed over sparse calls: d_in
    columns_read: int = 0  # summed over every call: weight columns read (the union, or d_in when dense)

    def add(self, sparse: bool, kept_pairs: int, offered_pairs: int, columns_read: int, in_features: int):
        self.add_call(sparse, kept_pairs, offered_pairs)
        self.columns_read += columns_read
        if sparse:
            self.kept_inputs += columns_read
            self.offered_inputs += in_features


class InputSparseLinear(nn.Module):
    """``linear`` with inputs ``|x_j| (norms_j) < threshold`` dropped; see the module docstring.
    ``output_rule`` = ``(t_l, ||W_down[:, j]||)``: a second rule an input must pass too (combined thresholds
    on a down projection)."""

    # max_share: the kept share where the dense product caught up (0.8-0.9 at 576x576, 576x1536, 1536x576, 1 thread)
    DEFAULT_POLICY: ClassVar[SparsePolicy] = SparsePolicy(max_tokens=MAX_TOKENS, max_share=0.8)
    TOKEN_LIMIT: ClassVar[int | None] = MAX_TOKENS

    def __init__(self, linear: nn.Linear, threshold: float, norms: torch.Tensor | None = None, *,
                 policy: SparsePolicy | None = None, output_rule: tuple[float, torch.Tensor] | None = None,
                 original: nn.Module | None = None):
        super().__init__()
        self.policy = resolve_policy(policy, type(self))
        self.linear, self.threshold = linear, float(threshold)
        self.original = linear if original is None else original  # the module ``restore`` puts back
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.weight_t = weight.float().t().contiguous()  # the column-major copy, made once
        self.norms = None if norms is None else norms.detach().float().cpu().contiguous()
        self.output_threshold, self.output_norms = 0.0, None
        if output_rule is not None:
            self.output_threshold = float(output_rule[0])
            self.output_norms = output_rule[1].detach().float().cpu().contiguous()
        self._max_union = int(self.policy.max_share * self.in_features)
        self.max_tokens = self.policy.max_tokens  # read on every call: one attribute lookup
        self.counters = Counters()
        self._index = torch.empty(self.in_features, dtype=torch.int32)
        # Looked up once: per-call Python work shows in tokens/s at batch 1 (bias outside nn.Module's lookup,
        # the kernel's fixed arguments in one struct).
        self._lib = projection_kernels() if self.policy.native else None
        self._bias = [linear.bias]
        self._masked = torch.empty(MAX_TOKENS, self.in_features, dtype=torch.float32)  # the kernel's x * keep
        self._args = _Projection(self.in_features, self.out_features, self._max_union, 0, pointer(self.weight_t),
                                 pointer(self.norms), pointer(self.output_norms), self.threshold,
                                 self.output_threshold, pointer(self._index), 0, pointer(self._masked))
        self._args_ptr = ctypes.addressof(self._args)

    @property
    def max_union(self) -> int:
        """Most kept inputs (union over a call's tokens) the sparse path takes; above, the dense product."""
        return self._max_union

    @max_union.setter
    def max_union(self, value: int) -> None:
        self._max_union = self._args.max_union = int(value)

    def keep(self, x: torch.Tensor) -> torch.Tensor:
        magnitude = x.abs()
        weighted = magnitude if self.norms is None else magnitude * self.norms.to(x.device, x.dtype)
        keep = weighted >= self.threshold
        if self.output_norms is not None:
            keep &= magnitude * self.output_norms.to(x.device, x.dtype) >= self.output_threshold
        return keep

    def masked_dense(self, x: torch.Tensor) -> torch.Tensor:
        """The reference: ``W (x * keep) + b``."""
        return F.linear(x * self.keep(x), self.linear.weight, self.linear.bias)

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        """``masked_dense``, counted (the forward's fallback)."""
        keep = self.keep(x)
        self.counters.add(False, int(keep.sum()), keep.numel(), self.in_features, self.in_features)
        return F.linear(x * keep, self.linear.weight, self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.numel() // self.in_features
        if n > self.max_tokens or not x.is_cpu or x.dtype != torch.float32 or (
                x.requires_grad and torch.is_grad_enabled()):
            return self._dense(x)
        y = self._sparse(x if x.is_contiguous() else x.contiguous(), n)
        if y is None:
            return self._dense(x)
        bias = self._bias[0]
        if bias is not None:
            y += bias
        return y

    def _dense_of_masked(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """The dense fallback on the kernel's ``x * keep`` (one product, no masking ops in PyTorch; the caller
        adds the bias)."""
        self.counters.add(False, self._args.pairs, n * self.in_features, self.in_features, self.in_features)
        masked = self._masked[:n].view(*x.shape[:-1], self.in_features)
        return F.linear(masked, self.linear.weight)

    def _sparse(self, x: torch.Tensor, n: int) -> torch.Tensor | None:
        """W (x * keep) for contiguous ``x`` of ``n`` tokens, reading only kept columns, shaped like ``x``
        but the last dimension. When the union of kept inputs is too large: the kernel's dense fallback, or
        None without the kernel (the caller runs the masked dense product)."""
        if self._lib is not None:
            # numpy's allocator: torch.empty costs about three times as much per call
            y = torch.from_numpy(np.empty((*x.shape[:-1], self.out_features), np.float32))  # zeroed by the kernel
            kept = self._lib.input_sparse_call(self._args_ptr, n, x.data_ptr(), y.data_ptr())
            if kept < 0:
                return self._dense_of_masked(x, n)
            kept_pairs = self._args.pairs
        else:
            flat = x.reshape(n, self.in_features)
            keep = self.keep(flat)
            index = keep.any(dim=0).nonzero().squeeze(1)
            kept = int(index.numel())
            if kept > self.max_union:
                return None
            kept_pairs = int(keep.sum())
            y = ((flat * keep).index_select(1, index) @ self.weight_t.index_select(0, index)).view(
                *x.shape[:-1], self.out_features)
        self.counters.add(True, kept_pairs, n * self.in_features, kept, self.in_features)
        return y


class InputSparseHandle(SwappedModules):
    """The swapped input-sparse projections, by module name (``SwappedModules``)."""

    def kept_share(self) -> float:
        """Kept inputs over offered inputs, over every sparse call so far (union over a call's tokens)."""
        offered = self._sum("offered_inputs")
        return self._sum("kept_inputs") / offered if offered else float("nan")

    def pair_share(self) -> float:
        """Kept (token, input) pairs over offered ones, over every call so far (sparse and dense)."""
        offered = self._sum("offered_pairs")
        return self._sum("kept_pairs") / offered if offered else float("nan")

    def weight_bytes_read(self, bytes_per_weight: float = 4.0) -> float:
        """Weight bytes of the swapped projections read so far: columns read x rows."""
        return sum(m.counters.columns_read * m.out_features for m in self.modules.values()) * bytes_per_weight

    def dense_weight_bytes(self, bytes_per_weight: float = 4.0) -> float:
        """Weight bytes of the swapped projections one dense call of each reads."""
        return sum(m.in_features * m.out_features for m in self.modules.values()) * bytes_per_weight


def _is_conv1d(module) -> bool:
    weight = getattr(module, "weight", None)
    return type(module).__name__ == "Conv1D" and weight is not None and weight.dim() == 2


def linear_view(module: nn.Module, name: str = "module") -> nn.Linear:
    """``module`` as an ``nn.Linear`` sharing its parameters: itself, or for GPT-2's ``Conv1D`` (``y = x W + b``
    with ``W`` stored (in, out)) a Linear whose weight is the transposed view of that storage."""
    if isinstance(module, nn.Linear):
        return module
    if not _is_conv1d(module):
        raise ConfigError(f"{name} is not an nn.Linear or Conv1D in this model (already sparsified?)")
    n_in, n_out = module.weight.shape
    view = nn.Linear(n_in, n_out, bias=False, device="meta")
    view.weight = nn.Parameter(module.weight.detach().t(), requires_grad=False)
    view.bias = None if module.bias is None else nn.Parameter(module.bias.detach(), requires_grad=False)
    return view


def _plan(model: nn.Module, thresholds) -> list[tuple[str, float, bool, tuple | None]]:
    """(projection name, threshold, weighted rule, output rule or None) per projection to swap: the
    thresholds kind's own ``projection_plan`` (input and combined kinds), or an ``inputs.MethodResult``'s."""
    plan = getattr(thresholds, "projection_plan", None)
    if plan is not None:
        return plan(model)
    if hasattr(thresholds, "projections") and hasattr(thresholds, "method"):  # an inputs.MethodResult
        weighted = thresholds.method == "cett"
        return [(row.name, float(row.threshold), weighted, None) for row in thresholds.projections]
    raise ConfigError(f"sparse projections need input or combined thresholds, got {type(thresholds).__name__}; "
                      "output (FFN neuron) thresholds run through sparsinglaw.sparse.sparsify")


def with_output_rules(model: nn.Module, plan: list, output) -> list:
    """``plan`` with each FFN's output threshold as the second rule of its down projection (a down
    projection without an input threshold gets threshold 0: only the output rule)."""
    layers = find_ffn_layers(model)
    values = output.checked_values(layers)
    by_module = {id(model.get_submodule(name)): i for i, (name, *_rest) in enumerate(plan)}
    plan = list(plan)
    for layer, value in zip(layers, values):
        down = getattr(layer, "down", None)
        if not (isinstance(down, nn.Linear) or _is_conv1d(down)):
            raise ModelError(f"{layer.name}: combined thresholds on the sparse path need a down projection module "
                             "(nn.Linear or GPT-2's Conv1D)")
        rule = (value, layer.down_column_norms())
        i = by_module.get(id(down))
        if i is None:
            name = next(n for n, m in model.named_modules() if m is down)
            plan.append((name, 0.0, False, rule))
        else:
            name, threshold, weighted, _ = plan[i]
            plan[i] = (name, threshold, weighted, rule)
    return plan


def sparsify_inputs(model: nn.Module, thresholds, *, policy: SparsePolicy | None = None) -> InputSparseHandle:
    """Swap every projection ``thresholds`` name (an ``inputs.MethodResult``, ``InputThresholds`` or
    ``CombinedThresholds``) for an ``InputSparseLinear`` at its threshold, falling back per ``policy``; the
    CETT rule's weights ``||W[:, j]||`` are recomputed from the model's own weights."""
    policy = resolve_policy(policy, InputSparseLinear)  # ConfigError before any module is swapped
    handle = InputSparseHandle(model)
    try:
        for name, threshold, weighted, output_rule in _plan(model, thresholds):
            original = model.get_submodule(name)
            linear = linear_view(original, name)
            norms = linear.weight.detach().float().norm(dim=0) if weighted else None
            handle.swap_in(name, InputSparseLinear(linear, threshold, norms, policy=policy, output_rule=output_rule,
                                                   original=original))
    except Exception:
        handle.restore()
        raise
    return handle


__all__ = ["InputSparseHandle", "InputSparseLinear", "MAX_TOKENS", "linear_view",
           "sparsify_inputs", "with_output_rules"]
