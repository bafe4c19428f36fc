"""Input-sparse projections on CPU for decode at batch 1-4 (TEAL-style input sparsity).

A projection ``y = W x`` whose input entries below a threshold are dropped needs only the columns
``W[:, j]`` of the kept inputs. Those are strided in the row-major ``W``, so ``InputSparseLinear`` keeps a
column-major copy (``W^T``, contiguous, made once when the module is built) and reads only the kept
columns' rows of it: the C kernel ``input_sparse.c`` (built like the other kernels, see
``sparsinglaw.native_build``; ``SPARSINGLAW_NATIVE=0`` disables it) or, without it, ``index_select`` in
PyTorch. The output equals the masked dense computation ``W (x * keep) + b`` up to float rounding (the sums
run in another order). Above ``max_share`` of kept inputs (union over the call's tokens), or for more than
``max_tokens`` tokens (prefill, evaluation), the masked dense product runs instead: it is faster there.

    handle = sparsify_inputs(model, result.method("cett"))    # an inputs.MethodResult
    ...decode...
    handle.restore()
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sparsinglaw.errors import ConfigError
from sparsinglaw.native_build import load, pointer

SOURCE = Path(__file__).with_name("input_sparse.c")
MAX_TOKENS = 4  # as in input_sparse.c
DEFAULT_MAX_SHARE = 0.8  # kept share where the dense product caught up (0.8-0.9 at 576x576, 576x1536, 1536x576, 1 thread)
_state: dict[str, object] = {}


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_int, ptr = ctypes.c_int, ctypes.c_void_p
    lib.input_sparse_matvec.restype = ctypes.c_int64
    lib.input_sparse_matvec.argtypes = [c_int, c_int, c_int, ptr, ptr, ptr, ctypes.c_float, c_int, ptr, ptr]
    return lib


def kernels() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (disabled, no compiler, build failed); built at most once."""
    if "lib" not in _state:
        _state["lib"] = load(SOURCE, _declare, "input-sparse projection kernel")
    return _state["lib"]


@dataclass
class Counters:
    sparse_calls: int = 0
    dense_calls: int = 0
    kept_inputs: int = 0  # summed over sparse calls: union of kept inputs
    offered_inputs: int = 0  # summed over sparse calls: d_in


class InputSparseLinear(nn.Module):
    """``linear`` with inputs ``|x_j| (norms_j) < threshold`` dropped; see the module docstring."""

    def __init__(self, linear: nn.Linear, threshold: float, norms: torch.Tensor | None = None, *,
                 max_share: float = DEFAULT_MAX_SHARE, max_tokens: int = MAX_TOKENS, native: bool = True):
        super().__init__()
        if not 0.0 <= max_share <= 1.0 or not 1 <= max_tokens <= MAX_TOKENS:
            raise ConfigError(f"max_share must be in [0, 1] and max_tokens in [1, {MAX_TOKENS}]")
        self.linear, self.threshold = linear, float(threshold)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.weight_t = weight.float().t().contiguous()  # the column-major copy, made once
        self.norms = None if norms is None else norms.detach().float().cpu().contiguous()
        self.max_union = int(max_share * self.in_features)
        self.max_tokens = max_tokens
        self.native = native
        self.counters = Counters()
        self._index = torch.empty(self.in_features, dtype=torch.int32)
        # Looked up once: at batch 1 a call's kernel time is tens of microseconds, and SmolLM2 makes 210
        # projection calls per token, so per-call Python work shows in tokens/s.
        self._lib = kernels() if native else None
        self._static = (pointer(self.weight_t), pointer(self.norms), pointer(self._index))

    def keep(self, x: torch.Tensor) -> torch.Tensor:
        magnitude = x.abs() if self.norms is None else x.abs() * self.norms.to(x.device, x.dtype)
        return magnitude >= self.threshold

    def masked_dense(self, x: torch.Tensor) -> torch.Tensor:
        """The reference: ``W (x * keep) + b``."""
        return F.linear(x * self.keep(x), self.linear.weight, self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if flat.shape[0] > self.max_tokens or not x.is_cpu or x.dtype != torch.float32 or (
                x.requires_grad and torch.is_grad_enabled()):
            self.counters.dense_calls += 1
            return self.masked_dense(x)
        y = self._sparse(flat.contiguous())
        if y is None:
            self.counters.dense_calls += 1
            return self.masked_dense(x)
        if self.linear.bias is not None:
            y += self.linear.bias
        return y.view(*x.shape[:-1], self.out_features)

    def _sparse(self, flat: torch.Tensor) -> torch.Tensor | None:
        """W (x * keep) reading only kept columns, or None when the union of kept inputs is too large."""
        if self._lib is not None:  # forward made flat CPU float32 contiguous, as the kernel needs
            y = torch.zeros(flat.shape[0], self.out_features, dtype=torch.float32)
            weight_t, norms, index = self._static
            kept = self._lib.input_sparse_matvec(flat.shape[0], self.in_features, self.out_features, flat.data_ptr(),
                                                 weight_t, norms, self.threshold, self.max_union, index, y.data_ptr())
            if kept < 0:
                return None
        else:
            keep = self.keep(flat)
            index = keep.any(dim=0).nonzero().squeeze(1)
            kept = int(index.numel())
            if kept > self.max_union:
                return None
            y = (flat * keep).index_select(1, index) @ self.weight_t.index_select(0, index)
        self.counters.sparse_calls += 1
        self.counters.kept_inputs += int(kept)
        self.counters.offered_inputs += self.in_features
        return y


@dataclass
class InputSparseHandle:
    """The swapped modules; ``restore()`` puts the original projections back (the modules and their counters
    stay readable afterwards; restoring twice is harmless)."""

    model: nn.Module
    modules: dict[str, InputSparseLinear] = field(default_factory=dict)

    def restore(self) -> None:
        for name, module in self.modules.items():
            parent, leaf = _parent(self.model, name)
            if getattr(parent, leaf) is module:
                setattr(parent, leaf, module.linear)

    def kept_share(self) -> float:
        """Kept inputs over offered inputs, over every sparse call so far."""
        kept = sum(m.counters.kept_inputs for m in self.modules.values())
        offered = sum(m.counters.offered_inputs for m in self.modules.values())
        return kept / offered if offered else float("nan")

    def dense_share(self) -> float:
        calls = [(m.counters.dense_calls, m.counters.sparse_calls) for m in self.modules.values()]
        total = sum(d + s for d, s in calls)
        return sum(d for d, _ in calls) / total if total else float("nan")


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def sparsify_inputs(model: nn.Module, method, *, max_share: float = DEFAULT_MAX_SHARE,
                    max_tokens: int = MAX_TOKENS, native: bool = True) -> InputSparseHandle:
    """Swap every projection of ``method`` (an ``inputs.MethodResult``) for an ``InputSparseLinear`` at its
    threshold; the CETT rule's weights ``||W[:, j]||`` are recomputed from the model's own weights."""
    handle = InputSparseHandle(model)
    weighted = method.method == "cett"
    try:
        for row in method.projections:
            parent, leaf = _parent(model, row.name)
            linear = getattr(parent, leaf)
            if not isinstance(linear, nn.Linear):
                raise ConfigError(f"{row.name} is not an nn.Linear in this model (already sparsified?)")
            norms = linear.weight.detach().float().norm(dim=0) if weighted else None
            module = InputSparseLinear(linear, row.threshold, norms, max_share=max_share, max_tokens=max_tokens,
                                       native=native)
            setattr(parent, leaf, module)
            handle.modules[row.name] = module
    except Exception:
        handle.restore()
        raise
    return handle


__all__ = ["DEFAULT_MAX_SHARE", "InputSparseHandle", "InputSparseLinear", "MAX_TOKENS", "kernels", "sparsify_inputs"]
