"""The compiled kernels of ``cett_kernels.c`` for CETT statistics and thresholded sparse passes.

Each function returns None when the kernels are unavailable (no compiler, ``SPARSINGLAW_NATIVE=0``) or the
tensors are not CPU float32 contiguous; the callers then run their PyTorch code, which computes the same
quantities (tests/metrics/test_cett_kernels.py checks they agree).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import torch

from sparsinglaw.native_build import load, pointer, usable

SOURCE = Path(__file__).with_name("cett_kernels.c")
_state: dict[str, object] = {}


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_int, c_float, c_double, ptr = ctypes.c_int, ctypes.c_float, ctypes.c_double, ctypes.c_void_p
    lib.grid_stats.restype = c_int
    lib.grid_stats.argtypes = [c_int, c_int, ptr, ptr, ptr, c_double, c_double, c_int, ptr, ptr, ptr, ptr]
    lib.masked_copies.restype = None
    lib.masked_copies.argtypes = [c_int, c_int, ptr, ptr, c_int, ptr, ptr]
    lib.anchor_dropped_norms.restype = c_int
    lib.anchor_dropped_norms.argtypes = [c_int, c_int, c_int, ptr, ptr, c_int, ptr, ptr, ptr]
    lib.threshold_apply.restype = ctypes.c_int64
    lib.threshold_apply.argtypes = [c_int, c_int, ptr, ptr, c_float, ptr, ptr]
    return lib


def kernels() -> ctypes.CDLL | None:
    if "lib" not in _state:
        _state["lib"] = load(SOURCE, _declare, "CETT measurement kernels")
    return _state["lib"]


def _ready(*tensors: torch.Tensor) -> bool:
    return usable(*tensors) and kernels() is not None


def grid_stats(h: torch.Tensor, norms: torch.Tensor, y_norm: torch.Tensor, log_lo: float, log_step: float,
               points: int):
    """(proxy sum per grid point, dropped count per grid point, full-proxy sum, max magnitude) over the rows
    of ``h`` ``(N, d_f)``, as ``CETTCurves._proxy_on_grid`` and its caller compute them; or None. The kernel
    splits the rows over PyTorch's OpenMP threads (``torch.get_num_threads()``)."""
    if not _ready(h, norms, y_norm):
        return None
    proxy, counts = np.zeros(points, dtype=np.float64), np.zeros(points, dtype=np.float64)
    full, top = ctypes.c_double(0.0), ctypes.c_float(0.0)
    status = kernels().grid_stats(h.shape[0], h.shape[1], pointer(h), pointer(norms), pointer(y_norm), log_lo,
                                  1.0 / log_step, points, proxy.ctypes.data, counts.ctypes.data,
                                  ctypes.byref(full), ctypes.byref(top))
    if status != 0:
        raise MemoryError("grid_stats could not allocate its scratch arrays")
    return torch.from_numpy(proxy), torch.from_numpy(counts), full.value, float(top.value)


def masked_copies(h: torch.Tensor, norms: torch.Tensor, thresholds: torch.Tensor, out: torch.Tensor) -> bool:
    """Fill ``out[k] = h * (|h| norms < thresholds[k])``; False (nothing written) when unavailable."""
    if not _ready(h, norms, thresholds, out):
        return False
    kernels().masked_copies(h.shape[0], h.shape[1], pointer(h), pointer(norms), len(thresholds),
                            pointer(thresholds), pointer(out))
    return True


def anchor_dropped_norms(h: torch.Tensor, norms: torch.Tensor, thresholds: torch.Tensor,
                         weight_t: torch.Tensor) -> torch.Tensor | None:
    """``|| sum_{i: |h_i| norms_i < t_k} h_i weight_t[i] ||`` per threshold and row of ``h`` ``(N, d_f)``: shape
    ``(K, N)``, what the masked copies times ``weight_t`` ``(d_f, d)`` give, by the nested-band kernel; or None.
    The kernel splits the rows over PyTorch's OpenMP threads."""
    if not _ready(h, norms, thresholds, weight_t) or len(thresholds) > 8:
        return None
    order = torch.argsort(thresholds)  # the kernel needs them ascending (nested dropped sets)
    ascending = thresholds[order].contiguous()
    sorted_out = torch.empty(len(thresholds), h.shape[0], dtype=torch.float32)
    status = kernels().anchor_dropped_norms(h.shape[0], h.shape[1], weight_t.shape[1], pointer(h), pointer(norms),
                                            len(ascending), pointer(ascending), pointer(weight_t),
                                            pointer(sorted_out))
    if status != 0:
        raise MemoryError("anchor_dropped_norms could not allocate its scratch arrays")
    out = torch.empty_like(sorted_out)
    out[order] = sorted_out
    return out


def threshold_apply(h: torch.Tensor, norms: torch.Tensor, threshold: float, neuron_kept: torch.Tensor | None):
    """Zero ``h`` (``(..., d_f)``, contiguous) in place where ``|h| norms < threshold``; kept counts per token
    (float32, shape ``h.shape[:-1]``), with per-neuron kept counts added to ``neuron_kept`` (float64) if given;
    or None when unavailable."""
    if not _ready(h, norms) or (neuron_kept is not None and not (neuron_kept.dtype == torch.float64
                                                                 and neuron_kept.is_contiguous())):
        return None
    flat = h.view(-1, h.shape[-1])
    token_kept = torch.empty(flat.shape[0], dtype=torch.float32)
    kernels().threshold_apply(flat.shape[0], flat.shape[1], pointer(flat), pointer(norms), threshold,
                              pointer(token_kept), pointer(neuron_kept))
    return token_kept.view(h.shape[:-1])
