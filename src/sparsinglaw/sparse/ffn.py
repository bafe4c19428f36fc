"""Sparse FFN modules: compute only the neurons that the thresholds keep, exactly.

A ``SparseFFN`` replaces one FFN module (``sparse.convert``) and computes the thresholded FFN of
docs/paper.md: ``y = W_down (h * [|h_i| * ||W_down[:, i]|| >= t_l])``. For a gated FFN it computes the whole
gate ``s``, takes as candidates the neurons with ``s_i != 0`` and (for ``t_l > 0``)
``|s_i| * (||W_up[i]|| * ||x|| + |b_up,i|) * ||W_down[:, i]|| >= t_l * (1 - 1e-3)`` (by Cauchy-Schwarz a
superset of the kept neurons), computes ``u`` for their union only, applies the exact rule per token and
the down projection for the kept columns. With ``t_l = 0`` this is exactly the ReLU non-zeros. Non-gated
FFNs compute ``h`` densely and the down projection sparsely.

On CPU in float32 the compiled kernels (``sparse_ffn.c`` via ``sparse.native``) do the work, a ReLU gate
fused and screened first with a float16 copy of ``W_gate`` (exact by a rounding bound); elsewhere PyTorch
gathers weight rows into a reused workspace. Past the ``SparsePolicy``'s limits (``DEFAULT_POLICY`` where
none is given) the masked dense computation runs. Every path is exact (tests compare each with the masked
dense computation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsinglaw.sparse import native
from sparsinglaw.sparse.modules import CallCounts, SparsePolicy, resolve_policy

MARGIN = 1e-3  # relative slack of the candidate bound against float rounding
_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16)


@dataclass
class FFNCounts(CallCounts):
    """``CallCounts`` of one sparse FFN (units: its neurons, kept when ``h_i != 0`` passes the rule) and the
    (token, neuron) pairs whose up/down projection was computed."""

    computed: float = 0.0


class _Workspace:
    """Reusable buffers for gathered weight rows, shared by all sparse FFNs of one shape."""

    _buffers: dict[tuple, torch.Tensor] = {}

    @classmethod
    def rows(cls, key: str, k: int, like: torch.Tensor) -> torch.Tensor:
        full = (key, like.shape[1], like.dtype, like.device)
        buf = cls._buffers.get(full)
        if buf is None or buf.shape[0] < k:
            buf = torch.empty(max(k, like.shape[0]), like.shape[1], dtype=like.dtype, device=like.device)
            cls._buffers[full] = buf
        return buf[:k]


def _gather_rows(key: str, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``weight[index]`` into the workspace; on CPU with numpy's single-threaded ``take`` (torch's
    ``index_select`` waits on OpenMP barriers when another process holds a core)."""
    out = _Workspace.rows(key, index.numel(), weight)
    if weight.device.type == "cpu" and weight.dtype in _NUMPY_DTYPES and weight.is_contiguous():
        np.take(weight.numpy(), index.numpy(), axis=0, out=out.numpy(), mode="clip")  # "raise" buffers
        return out
    return torch.index_select(weight, 0, index, out=out)


class SparseFFN(nn.Module):
    """Base: holds the original FFN's children under their own names (state_dict keys are unchanged, no
    weights are copied except the cached ``W_down^T``) and the original module for ``restore``."""

    DEFAULT_POLICY: ClassVar[SparsePolicy] = SparsePolicy(max_tokens=16, max_share=0.3)
    TOKEN_LIMIT: ClassVar[int | None] = None  # past native.MAX_TOKENS the PyTorch path runs

    def __init__(self, original: nn.Module, parts: dict[str, str], threshold: float,
                 policy: SparsePolicy | None = None):
        super().__init__()
        for name, child in original.named_children():
            self.add_module(name, child)
        self._parts = parts  # role ("gate", "up", "down", "act") -> child name
        self._original = [original]  # a list, so it is not registered as a child
        self.threshold = float(threshold)
        self.policy = resolve_policy(policy, type(self))
        down = self.part("down")
        self.width = down.weight.shape[1]
        with torch.no_grad():
            w_down = down.weight.detach()
            self.register_buffer("down_t", w_down.t().contiguous(), persistent=False)
            self.register_buffer("down_norms", w_down.float().norm(dim=0).to(w_down.dtype), persistent=False)
        self.counters = FFNCounts()
        self._candidate_list = torch.empty(self.width, dtype=torch.int32)  # the native kernel's workspace

    @property
    def original(self) -> nn.Module:
        return self._original[0]

    def part(self, role: str) -> nn.Module:
        return getattr(self, self._parts[role])

    def _keep(self, h: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """The exact rule ``|h_i| * ||W_down[:, i]|| >= t`` (all of ``h`` when ``t == 0``)."""
        if self.threshold > 0:
            return h * (h.abs() * norms >= self.threshold)
        return h

    def _down(self, h: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        down = self.part("down")
        if index is None:
            return F.linear(h, down.weight, down.bias)
        return self._with_down_bias(h @ _gather_rows("down", self.down_t, index))

    def _sparse_allowed(self, flat: torch.Tensor) -> bool:
        """Few enough tokens, and no autograd (gradients take the dense path: the sparse one gathers into
        a reused workspace and through the cached ``W_down^T``, which autograd cannot follow)."""
        return flat.shape[0] <= self.policy.max_tokens and not torch.is_grad_enabled()

    def _union(self, candidates: torch.Tensor) -> torch.Tensor | None:
        """Indices of the union of candidates (a bool mask, or any tensor whose non-zeros are the candidates)
        over tokens, or None when the dense path should run."""
        if candidates.shape[0] > 1:
            candidates = candidates.any(dim=0) if candidates.dtype == torch.bool else candidates.abs().amax(dim=0)
        else:
            candidates = candidates[0]
        index = candidates.nonzero().view(-1)
        return index if index.numel() <= self.policy.max_share * self.width else None

    def _native_ok(self, *tensors: torch.Tensor) -> bool:
        return (self.policy.native and tensors[0].shape[0] <= native.MAX_TOKENS and native.usable(*tensors)
                and native.kernels() is not None)

    def _max_union(self) -> int:
        return int(self.policy.max_share * self.width)

    def _with_down_bias(self, y: torch.Tensor) -> torch.Tensor:
        bias = self.part("down").bias
        return y if bias is None else y + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        y, h_active, computed, sparse = self._compute(flat)
        self.counters.add_call(sparse, float(h_active), float(flat.shape[0] * self.width))
        self.counters.computed += computed
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], y.shape[-1])

    def _compute(self, flat: torch.Tensor):
        raise NotImplementedError


class SparseGatedFFN(SparseFFN):
    """``down(act(gate(x)) * up(x))`` (Llama family) with the exact candidate rule of the module docstring."""

    def __init__(self, original: nn.Module, parts: dict[str, str], threshold: float,
                 policy: SparsePolicy | None = None):
        super().__init__(original, parts, threshold, policy)
        up = self.part("up")
        with torch.no_grad():  # |h_i| w_i <= |s_i| (||x|| ||W_up[i]|| w_i + |b_up,i| w_i)
            up_norms = up.weight.detach().float().norm(dim=1)
            self.register_buffer("bound_scale", (up_norms * self.down_norms.float()).to(self.down_norms.dtype),
                                 persistent=False)
            bias = up.bias.detach().abs() * self.down_norms if up.bias is not None else None
            self.register_buffer("bound_bias", bias, persistent=False)
        # A plain ReLU gate can be fused into the compiled kernel (the gate is computed there too), and
        # screened there with a float16 copy of W_gate (exact, see sparse_ffn.c's may_fire).
        self._fused_relu = type(self.part("act")) is nn.ReLU
        self._recent_union = 0.0  # union share of the last call (fused kernel fallback, see SparsePolicy)
        self._screen = None
        if self._fused_relu and self.policy.native and self.policy.half_screen and native.usable(self.part("gate").weight):
            self._screen = native.half_screen(self.part("gate").weight)

    def _candidates(self, flat: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Candidates as a tensor whose non-zeros they are (``s`` itself for t = 0), or a bool mask: the
        Cauchy-Schwarz bound, which is 0 where ``s_i`` is 0 (few ops: the bs=1 path is overhead-bound)."""
        if self.threshold <= 0:
            return s
        scale = flat.norm(dim=-1, keepdim=True) * self.bound_scale
        if self.bound_bias is not None:
            scale = scale + self.bound_bias
        return s.abs() * scale >= self.threshold * (1 - MARGIN)

    def _compute(self, flat: torch.Tensor):
        gate, up = self.part("gate"), self.part("up")
        fused = (self._fused_relu and self._recent_union <= self.policy.fused_max_share
                 and self._sparse_allowed(flat) and self._native_ok(flat, gate.weight, up.weight))
        if fused:  # gate, selection, up and down in one pass over the weights (sparsinglaw.sparse.native)
            y, kept, computed = native.gated_relu(flat, gate.weight, gate.bias, up.weight, up.bias, self.down_t,
                                                  self.down_norms, self.bound_scale, self.bound_bias,
                                                  self.threshold, MARGIN, self._screen)
            self._recent_union = computed / (flat.shape[0] * self.width)
            return self._with_down_bias(y), kept, float(computed), True
        s = self.part("act")(F.linear(flat, gate.weight, gate.bias))
        if self._fused_relu and self._sparse_allowed(flat):
            # Only calls that could have been sparse say anything about the next one: a prefill's union is
            # near 1 and would send the first decode step dense for nothing.
            self._recent_union = float((s != 0).any(dim=0).sum()) / self.width
        index = None
        if self._sparse_allowed(flat):
            if self._native_ok(flat, s, up.weight, self.down_t):
                out = native.gated(flat, s, up.weight, up.bias, self.down_t, self.down_norms, self.bound_scale,
                                   self.bound_bias, self.threshold, MARGIN, self._max_union(), self._candidate_list)
                if out is not None:
                    y, kept, computed = out
                    return self._with_down_bias(y), kept, float(computed), True
            else:
                index = self._union(self._candidates(flat, s))
        if index is None:
            h = self._keep(s * F.linear(flat, up.weight, up.bias), self.down_norms)
            return self._down(h, None), torch.count_nonzero(h), float(h.numel()), False
        bias = up.bias.index_select(0, index) if up.bias is not None else None
        u = F.linear(flat, _gather_rows("up", up.weight, index), bias)
        h = self._keep(s.index_select(1, index) * u, self.down_norms.index_select(0, index))
        return self._down(h, index), torch.count_nonzero(h), float(index.numel() * flat.shape[0]), True


class SparseNonGatedFFN(SparseFFN):
    """``down(act(up(x)))`` (GPT-NeoX, Falcon): ``h`` densely, the down projection for kept neurons only."""

    def _compute(self, flat: torch.Tensor):
        up = self.part("up")
        h = self._keep(self.part("act")(F.linear(flat, up.weight, up.bias)), self.down_norms)
        index = None
        if self._sparse_allowed(flat):
            if self._native_ok(h, self.down_t):
                out = native.down(h, self.down_t, self.down_norms, self.threshold, self._max_union(),
                                  self._candidate_list)
                if out is not None:
                    y, kept = out
                    return self._with_down_bias(y), kept, float(kept), True
            else:
                index = self._union(h)
        if index is None:
            return self._down(h, None), torch.count_nonzero(h), float(h.numel()), False
        h_sel = h.index_select(1, index)
        return self._down(h_sel, index), torch.count_nonzero(h_sel), float(index.numel() * flat.shape[0]), True
