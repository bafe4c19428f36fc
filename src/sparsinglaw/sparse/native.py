"""The compiled CPU kernels of the sparse modules, built and cached by ``sparsinglaw.native_build``: the
sparse FFNs' (``sparse_ffn.c``, ``kernels()``) and the input-sparse projections' (``input_sparse.c``,
``projection_kernels()``, its calls in ``sparse.input_sparse``).

At batch size 1 eager PyTorch spends a sparse module's saving on per-op overhead and row copies; the kernels
read each needed weight row in place, once per call. Without them (``SPARSINGLAW_NATIVE=0``, no compiler)
the loaders return None and the modules take their PyTorch path."""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from sparsinglaw.native_build import load, usable  # noqa: F401 (usable: part of this module's API)
from sparsinglaw.native_build import pointer as _ptr

SOURCE = Path(__file__).with_name("sparse_ffn.c")
PROJECTION_SOURCE = Path(__file__).with_name("input_sparse.c")
MAX_TOKENS = 64  # as in sparse_ffn.c

_state: dict[str, object] = {}


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_int, c_float, ptr = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    lib.sparse_gated_ffn.restype = ctypes.c_int64
    lib.sparse_gated_ffn.argtypes = [c_int, c_int, c_int] + [ptr] * 9 + [c_float, c_float, c_int, ptr, ptr, ptr]
    lib.sparse_gated_relu_ffn.restype = ctypes.c_int64
    lib.sparse_gated_relu_ffn.argtypes = [c_int, c_int, c_int] + [ptr] * 12 + [c_float, c_float, ptr, ptr]
    lib.sparse_down.restype = ctypes.c_int64
    lib.sparse_down.argtypes = [c_int, c_int, c_int, ptr, ptr, ptr, c_float, c_int, ptr, ptr]
    return lib


def _declare_projection(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_int, ptr = ctypes.c_int, ctypes.c_void_p
    lib.input_sparse_call.restype = ctypes.c_int64
    lib.input_sparse_call.argtypes = [ptr, c_int, ptr, ptr]
    return lib


def _library(key: str, source: Path, declare, what: str) -> ctypes.CDLL | None:
    """The loaded library, or None (no compiler, build failed, or disabled); built at most once a process."""
    if key not in _state:
        _state[key] = load(source, declare, what)
    return _state[key]


def kernels() -> ctypes.CDLL | None:
    """The sparse FFN kernels (``_library``)."""
    return _library("lib", SOURCE, _declare, "sparse FFN kernels")


def projection_kernels() -> ctypes.CDLL | None:
    """The input-sparse projection kernel (``_library``)."""
    return _library("projections", PROJECTION_SOURCE, _declare_projection, "input-sparse projection kernel")


def gated(x: torch.Tensor, s: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor | None, wd_t: torch.Tensor,
          norms: torch.Tensor, bound_scale: torch.Tensor, bound_bias: torch.Tensor | None, threshold: float,
          margin: float, max_union: int, workspace: torch.Tensor):
    """(y without the down bias, kept pairs, computed pairs), or None when the union of candidates exceeds
    ``max_union`` (run dense). ``x`` (n, d) and ``s`` (n, d_f) contiguous float32; n <= MAX_TOKENS."""
    lib = kernels()
    n, d = x.shape
    df = s.shape[1]
    y = torch.zeros(n, wd_t.shape[1], dtype=torch.float32)
    xnorm = x.norm(dim=1) if threshold > 0 else x  # unused for t == 0
    computed = ctypes.c_int64(0)
    kept = lib.sparse_gated_ffn(
        n, d, df, _ptr(x), _ptr(s), _ptr(w_up), _ptr(b_up), _ptr(wd_t), _ptr(norms), _ptr(bound_scale),
        _ptr(bound_bias), _ptr(xnorm), threshold, margin, max_union, _ptr(workspace), _ptr(y), ctypes.byref(computed),
    )
    return None if kept < 0 else (y, kept, computed.value)


def half_screen(w_gate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(float16 copy of W_gate, per-row slack) for the fused kernel's exact screening, or None when the weights
    do not fit float16. slack_i = (||w_i - fp16(w_i)|| + (d + 2) 2^-22 ||w_i||) (1 + 1e-3): the weights'
    rounding plus twice the float32 dot-product error bound gamma_d ||w|| ||x|| (with room to spare)."""
    with torch.no_grad():
        half = w_gate.detach().to(torch.float16)
        if not torch.isfinite(half).all():
            return None
        w64 = w_gate.detach().double()
        slack = ((w64 - half.double()).norm(dim=1) + (w64.shape[1] + 2) * 2.0**-22 * w64.norm(dim=1)) * (1 + 1e-3)
        return half.contiguous(), slack.float()


def gated_relu(x: torch.Tensor, w_gate: torch.Tensor, b_gate: torch.Tensor | None, w_up: torch.Tensor,
               b_up: torch.Tensor | None, wd_t: torch.Tensor, norms: torch.Tensor, bound_scale: torch.Tensor,
               bound_bias: torch.Tensor | None, threshold: float, margin: float,
               screen: tuple[torch.Tensor, torch.Tensor] | None = None):
    """The fused gated-ReLU FFN: (y without the down bias, kept pairs, computed pairs); any density.
    ``screen`` is ``half_screen(W_gate)`` to screen the gate in float16 first (same result, fewer bytes)."""
    lib = kernels()
    n, d = x.shape
    y = torch.zeros(n, wd_t.shape[1], dtype=torch.float32)
    xnorm = x.norm(dim=1) if threshold > 0 or screen is not None else x  # unused otherwise
    gate16, slack = screen if screen is not None else (None, None)
    computed = ctypes.c_int64(0)
    kept = lib.sparse_gated_relu_ffn(
        n, d, w_gate.shape[0], _ptr(x), _ptr(w_gate), _ptr(b_gate), _ptr(w_up), _ptr(b_up), _ptr(wd_t),
        _ptr(norms), _ptr(bound_scale), _ptr(bound_bias), _ptr(xnorm), _ptr(gate16), _ptr(slack), threshold, margin,
        _ptr(y), ctypes.byref(computed),
    )
    if kept < 0:  # only for n > MAX_TOKENS, which callers rule out first
        raise ValueError(f"the fused sparse FFN kernel takes at most {MAX_TOKENS} tokens per call, got {n}")
    return y, kept, computed.value


def down(h: torch.Tensor, wd_t: torch.Tensor, norms: torch.Tensor, threshold: float, max_union: int,
         workspace: torch.Tensor):
    """(y = W_down h over the kept neurons, kept pairs), or None above ``max_union`` candidates."""
    lib = kernels()
    n, df = h.shape
    y = torch.zeros(n, wd_t.shape[1], dtype=torch.float32)
    kept = lib.sparse_down(n, wd_t.shape[1], df, _ptr(h), _ptr(wd_t), _ptr(norms), threshold, max_union,
                           _ptr(workspace), _ptr(y))
    return None if kept < 0 else (y, kept)
