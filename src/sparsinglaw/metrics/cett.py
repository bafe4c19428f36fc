"""CETT, cumulative errors of tail truncation (docs/paper.md section 2; Zhang et al. 2024, "ReLU^2 Wins").

For FFN l and threshold t the dropped set is ``D = {i : |h_i| * ||W_down[:, i]|| < t}`` and
``CETT_l(t) = mean over tokens of || sum_{i in D} n_i || / || y ||`` with ``n_i = h_i W_down[:, i]`` and
``y = W_down h``. A target c gives each layer its ``t_l`` with ``CETT_l(t_l) = c``: ``CETTCurves`` gathers
each layer's curve in the one dense pass and answers ``t_l(c)`` for any c by monotone interpolation,
instead of a bisection per c."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.interpolate import PchipInterpolator

from sparsinglaw.errors import ConfigError, NumericalError
from sparsinglaw.metrics import kernels
from sparsinglaw.metrics.base import Applied, SparsityMetric, register_metric
from sparsinglaw.models.adapters import FFNLayer

# Exact CETT where the placement sequence's proxy reaches these levels (geometrically spaced), around the
# PPL-1% solutions of the paper's models and SmolLM2.
ANCHOR_LEVELS = (0.01, 0.3)
# The exact anchors run on each sequence's first position and every k-th later one, k = tokens //
# ANCHOR_TOKENS up to MAX_ANCHOR_STRIDE (MeasureConfig.anchor_stride 0), which keeps thresholds within about
# 0.5% of every token's (benchmarks/bench_stats_pass.py).
ANCHOR_TOKENS = 1024
MAX_ANCHOR_STRIDE = 4
THRESHOLD_RULE = "zero h_i where |h_i| * ||W_down[:, i]|| < t_l (t_l per layer)"


def dropped_norm_ratio(h: torch.Tensor, weight_t: torch.Tensor, norms: torch.Tensor,
                       thresholds: torch.Tensor, chunk: int = 256, y_norm: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token ``||sum_{i: |h_i| w_i < t} n_i|| / ||y||`` for each threshold: shape ``(K, N)``.
    ``h`` is ``(N, d_f)`` float32, ``weight_t`` is ``W_down^T``; tokens with ``y = 0`` get 0. The C kernel
    ``anchor_dropped_norms`` sums each dropped pair once; without it, K masked copies and one matmul."""
    exact = kernels.anchor_dropped_norms(h, norms, thresholds, weight_t)
    if exact is not None:  # each dropped pair once (nested bands), no masked copies: ~2x faster on CPU
        y = (h @ weight_t).norm(dim=-1) if y_norm is None else y_norm
        return torch.where(y > 0, exact / y.clamp_min(1e-30), torch.zeros_like(exact))
    out = []
    levels = thresholds.tolist()
    buffer = torch.empty(len(levels) * min(chunk, h.shape[0]) * h.shape[1], dtype=h.dtype, device=h.device)
    for start in range(0, h.shape[0], chunk):
        part = h[start : start + chunk]
        y = (part @ weight_t).norm(dim=-1) if y_norm is None else y_norm[start : start + chunk]
        block = buffer[: len(levels) * part.numel()].view(len(levels), *part.shape)
        if not kernels.masked_copies(part, norms, thresholds, block):
            magnitude = part.abs() * norms
            for k, level in enumerate(levels):
                torch.mul(part, magnitude < level, out=block[k])
        dropped = (block @ weight_t).norm(dim=-1)
        out.append(torch.where(y > 0, dropped / y.clamp_min(1e-30), torch.zeros_like(dropped)))
    return torch.cat(out, dim=1)


def auto_anchor_stride(n_tokens: int) -> int:
    """Every k-th position for the exact anchors: as sparse as keeps ``ANCHOR_TOKENS`` of them, at most 4
    (1, every token, below 2 ANCHOR_TOKENS)."""
    return max(1, min(MAX_ANCHOR_STRIDE, n_tokens // ANCHOR_TOKENS))


def _log_bins(magnitude: torch.Tensor, log_lo: float, log_step: float, points: int) -> torch.Tensor:
    """Index of the fine-grid cell of each magnitude: the number of grid points <= it (0 for zeros)."""
    index = torch.floor((magnitude.clamp_min(1e-38).log() - log_lo) / log_step) + 1
    return index.clamp_(0, points).long()


class CETTCurves:
    """Streaming per-layer CETT-versus-threshold statistics from dense activations.

    Exact CETT costs a ``W_down`` matmul, so it is computed at ``anchors`` thresholds per layer; between them
    a cheap proxy ``sqrt(sum_{i in D} ||n_i||^2) / ||y||`` on a fine log grid is corrected by the exact/proxy
    ratio, interpolated through the anchors (above ``max |h_i| w_i`` CETT is exactly 1). Grids are placed
    once from one sequence (``place``); after that all state is sums over tokens, so batches merge and
    processes all-reduce. ``||y||`` comes from the down projection's output where it can be hooked.
"""

    def __init__(self, layers: Sequence[FFNLayer], anchors: int = 5, fine_points: int = 256,
                 anchor_stride: int = 1):
        if anchors < 1 or fine_points < 16 or anchor_stride < 1:
            raise ConfigError("CETT statistics need anchors >= 1, fine_points >= 16 and anchor_stride >= 1, got "
                              f"{anchors}, {fine_points}, {anchor_stride}")
        self.layers = list(layers)
        self.anchors, self.fine_points, self.anchor_stride = anchors, fine_points, anchor_stride
        self.norms = [layer.down_column_norms() for layer in self.layers]
        n = len(self.layers)
        self.log_lo = [0.0] * n
        self.log_step = [0.0] * n
        self.anchor_index: list[torch.Tensor | None] = [None] * n  # fine-grid indices of the anchors
        self.proxy_sum = [torch.zeros(fine_points, dtype=torch.float64) for _ in range(n)]
        self.dropped_count = [torch.zeros(fine_points, dtype=torch.float64) for _ in range(n)]
        self.anchor_exact: list[torch.Tensor | None] = [None] * n
        self.anchor_proxy: list[torch.Tensor | None] = [None] * n  # the proxy summed over the same tokens
        self._weight_t: list[torch.Tensor | None] = [None] * n
        self.full_proxy = torch.zeros(n, dtype=torch.float64)  # proxy when every neuron is dropped
        self.max_magnitude = torch.zeros(n, dtype=torch.float64)
        self.tokens = torch.zeros(n, dtype=torch.float64)
        # Per-layer inverse curves (CETT -> threshold), built on first use and dropped when the sums change:
        # a search asks thresholds for many c, and rebuilding 30 interpolators each time cost ~60 ms per c.
        self._inverse: dict[int, tuple[float, float, PchipInterpolator | float]] = {}

    def fine_grid(self, index: int) -> np.ndarray:
        return np.exp(self.log_lo[index] + self.log_step[index] * np.arange(self.fine_points))

    def _set_grid(self, i: int, magnitude: torch.Tensor) -> None:
        """Fine log grid from the placement sample, with margins for other tokens' smaller/larger values."""
        hi = float(magnitude.max())
        lo = float(torch.where(magnitude > 0, magnitude, torch.full_like(magnitude, float("inf"))).min())
        if hi <= 0:  # nothing fired in the sample
            lo, hi = 1e-12, 1.0
        self.log_lo[i] = np.log(lo) - np.log(100.0)
        self.log_step[i] = (np.log(hi) + np.log(4.0) - self.log_lo[i]) / (self.fine_points - 1)

    def _place_anchors(self, i: int, proxy_levels: np.ndarray) -> None:
        """Anchors where the placement sample's proxy CETT crosses geometric target levels."""
        grid = self.fine_grid(i)
        targets = np.geomspace(ANCHOR_LEVELS[0], ANCHOR_LEVELS[1], self.anchors)
        ok = np.concatenate([[True], np.diff(proxy_levels) > 0]) & (proxy_levels > 0)
        if ok.sum() >= 2:
            anchor = np.interp(np.log(targets), np.log(proxy_levels[ok]), np.log(grid[ok]))
            index = np.rint((anchor - self.log_lo[i]) / self.log_step[i]).astype(int)
        else:
            index = np.linspace(1, self.fine_points - 2, self.anchors).astype(int)
        # Anchors sit on fine-grid points, so the proxy there is read off the fine grid for free.
        self.anchor_index[i] = torch.tensor(np.unique(np.clip(index, 1, self.fine_points - 2)))

    def _grid_sums(self, i: int, flat: torch.Tensor, y_norm: torch.Tensor):
        """(proxy CETT summed over tokens per grid point, dropped counts per grid point, full-proxy sum, max
        magnitude) of one call: the C kernel's ``grid_stats``, or the same sums in PyTorch without it."""
        norms = self.norms[i].to(flat.device)
        stats = kernels.grid_stats(flat, norms, y_norm, self.log_lo[i], self.log_step[i], self.fine_points)
        if stats is not None:
            return stats
        magnitude = flat.abs() * norms
        proxy, counts = self._proxy_on_grid(i, magnitude, y_norm)
        full = float(_per_token_ratio(magnitude.pow(2).sum(-1, keepdim=True).sqrt(), y_norm).sum())
        return proxy, counts, full, float(magnitude.max())

    def _proxy_on_grid(self, i: int, magnitude: torch.Tensor, y_norm: torch.Tensor):
        """Summed per-token proxy CETT on the fine grid and dropped counts, per grid point (PyTorch)."""
        bins = _log_bins(magnitude, self.log_lo[i], self.log_step[i], self.fine_points)
        squares = torch.zeros(magnitude.shape[0], self.fine_points + 1, dtype=magnitude.dtype)
        squares.scatter_add_(1, bins, magnitude * magnitude)
        cumulative = squares.cumsum(dim=1)[:, : self.fine_points].sqrt()
        counts = torch.bincount(bins.flatten(), minlength=self.fine_points + 1).cumsum(0)[: self.fine_points]
        return _per_token_ratio(cumulative, y_norm).sum(dim=0).double(), counts.double()

    def anchor_thresholds(self, i: int) -> torch.Tensor:
        return torch.tensor(self.fine_grid(i)[self.anchor_index[i].numpy()], dtype=torch.float32)

    def _inputs(self, layer: FFNLayer, h: torch.Tensor, y: torch.Tensor | None):
        """(h as (N, d_f) float32, W_down^T, ||y||) for one FFN call; ``y`` (the down projection's output
        without bias) saves recomputing it when the caller has it."""
        i = layer.index
        flat = h.detach().reshape(-1, h.shape[-1]).float()
        if self._weight_t[i] is None:  # W_down^T, contiguous, cached: it is used every batch
            self._weight_t[i] = layer.down_weight().detach().float().t().contiguous()
        weight_t = self._weight_t[i].to(flat.device)
        if y is None:
            y_norm = (flat @ weight_t).norm(dim=-1)
        else:
            y_norm = y.detach().reshape(flat.shape[0], -1).float().norm(dim=-1)
        return flat, weight_t, y_norm

    def placed(self, index: int) -> bool:
        return self.anchor_index[index] is not None

    def place(self, layer: FFNLayer, h: torch.Tensor, s: torch.Tensor | None = None,
              y: torch.Tensor | None = None) -> None:
        """Fix FFN ``layer``'s fine grid and anchors from a placement sample (evaluation sequence 0 on every
        process), so the statistics stay pure sums however the data is split."""
        i = layer.index
        self._inverse.pop(i, None)
        flat, _, y_norm = self._inputs(layer, h, y)
        magnitude = flat.abs() * self.norms[i].to(flat.device)
        self._set_grid(i, magnitude)
        proxy = self._grid_sums(i, flat, y_norm)[0]
        self._place_anchors(i, (proxy / flat.shape[0]).numpy())
        self.anchor_exact[i] = torch.zeros(len(self.anchor_index[i]), dtype=torch.float64)
        self.anchor_proxy[i] = torch.zeros(len(self.anchor_index[i]), dtype=torch.float64)

    def observe(self, layer: FFNLayer, h: torch.Tensor, s: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> None:
        """Accumulate one batch (``y``: the down projection's output without bias, if the caller has it).
        Unplaced FFNs are placed from this batch's first sequence, so the first batch observed must start
        at the placement sequence (or call ``place`` beforehand)."""
        i = layer.index
        if not self.placed(i):
            sequence = slice(0, 1) if h.dim() == 3 else slice(None)  # the first sequence, or routed tokens
            self.place(layer, h[sequence], y=None if y is None else y[sequence])
        self._inverse.pop(i, None)
        flat, weight_t, y_norm = self._inputs(layer, h, y)
        proxy, counts, full, top = self._grid_sums(i, flat, y_norm)
        self.proxy_sum[i] += proxy.cpu()
        self.dropped_count[i] += counts.cpu()
        self.full_proxy[i] += full
        self._observe_anchors(i, h, flat, weight_t, y_norm, proxy)
        self.max_magnitude[i] = max(float(self.max_magnitude[i]), top)
        self.tokens[i] += flat.shape[0]

    def _anchor_samples(self, h: torch.Tensor, flat: torch.Tensor, y_norm: torch.Tensor):
        """(h rows, ||y||, [(rows slice, weight)]) of the anchor tokens, in strata: each sequence's first
        position (weight 1: an attention sink, always taken) and every ``anchor_stride``-th later one (weight
        ``anchor_stride``), chosen by (sequence, position) only; stacked for one kernel call."""
        if self.anchor_stride == 1 or h.dim() != 3 or h.shape[1] <= self.anchor_stride:
            return flat, y_norm, [(slice(None), 1.0)]  # all tokens (routed MoE tokens have no positions)
        batch, width = h.shape[0], flat.shape[-1]
        tokens, norms = flat.view(batch, -1, width), y_norm.view(batch, -1)
        later = slice(self.anchor_stride, None, self.anchor_stride)
        rows = torch.cat([tokens[:, 0], tokens[:, later].reshape(-1, width)])
        row_y = torch.cat([norms[:, 0], norms[:, later].reshape(-1)])
        return rows, row_y, [(slice(0, batch), 1.0), (slice(batch, None), float(self.anchor_stride))]

    def _observe_anchors(self, i: int, h: torch.Tensor, flat: torch.Tensor, weight_t: torch.Tensor,
                         y_norm: torch.Tensor, proxy: torch.Tensor) -> None:
        """Exact CETT at the anchors, and the proxy there, summed over the anchor tokens (their ratio is the
        correction: a ratio estimator, since exact and proxy move together)."""
        anchors = self.anchor_thresholds(i).to(flat.device)
        norms = self.norms[i].to(flat.device)
        rows, row_y, strata = self._anchor_samples(h, flat, y_norm)
        exact = dropped_norm_ratio(rows, weight_t, norms, anchors, y_norm=row_y)
        for part, weight in strata:
            self.anchor_exact[i] += weight * exact[:, part].sum(dim=1).double().cpu()
            at_rows = proxy if rows is flat else self._grid_sums(i, rows[part], row_y[part])[0]
            self.anchor_proxy[i] += weight * at_rows.cpu()[self.anchor_index[i]].double()

    def observe_output(self, layer: FFNLayer, h: torch.Tensor, y: torch.Tensor) -> None:
        """``observe`` for output hooks, which also hand over ``y`` (see ``FFNLayer.attach_output``)."""
        self.observe(layer, h, None, y)

    def reduce(self, all_reduce) -> None:
        """Combine the sums of every process: ``all_reduce(tensor, op)`` with op "sum" or "max"."""
        self._inverse.clear()
        for i in range(len(self.layers)):
            for tensor in (self.proxy_sum[i], self.dropped_count[i], self.anchor_exact[i], self.anchor_proxy[i]):
                all_reduce(tensor, "sum")
        for tensor, op in ((self.full_proxy, "sum"), (self.tokens, "sum"), (self.max_magnitude, "max")):
            all_reduce(tensor, op)

    def curve(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(thresholds, token-averaged CETT) of FFN ``index`` on the fine grid, thresholds ascending."""
        i = index
        if self.anchor_index[i] is None or self.tokens[i] == 0:
            raise NumericalError(f"no dense activations were seen for FFN {self.layers[i].name}")
        n = float(self.tokens[i])
        grid = self.fine_grid(i)
        proxy = self.proxy_sum[i].numpy() / n
        # Correction log(exact/proxy) against log(proxy) through 0 (proxy -> 0), the anchors and full truncation.
        tiny = float(proxy[proxy > 0][0]) if (proxy > 0).any() else 1e-12
        points = {np.log(tiny): 0.0}
        exact, at_anchor = self.anchor_exact[i].numpy(), self.anchor_proxy[i].numpy()
        for k, e, q in zip(self.anchor_index[i].numpy(), exact, at_anchor):
            if e > 0 and q > 0 and proxy[k] > tiny:
                points[float(np.log(proxy[k]))] = float(np.log(e / q))
        full = float(self.full_proxy[i]) / n
        if full > 0:
            points[max(np.log(full), max(points) + 1e-9)] = float(-np.log(full))
        xs = np.array(sorted(points))
        correction = np.array([points[k] for k in xs])
        log_proxy = np.log(np.clip(proxy, tiny, None))
        log_r = PchipInterpolator(xs, correction)(np.clip(log_proxy, xs[0], xs[-1])) if len(xs) > 1 else 0 * grid
        levels = np.minimum(np.maximum.accumulate(proxy * np.exp(log_r)), 1.0)
        return grid, levels

    def threshold(self, index: int, cett: float) -> float:
        """``t_l`` with ``CETT_l(t_l) = cett`` (monotone PCHIP in log-log; clamped to the grid's range)."""
        if cett <= 0:
            return 0.0
        if index not in self._inverse:
            self._inverse[index] = self._inverse_curve(index)
        lowest, highest, inverse = self._inverse[index]
        if not callable(inverse):
            return inverse
        return float(np.exp(inverse(np.log(np.clip(cett, lowest, highest)))))

    def _inverse_curve(self, index: int) -> tuple[float, float, PchipInterpolator | float]:
        """(lowest CETT, highest CETT, log CETT -> log threshold interpolator, or the one threshold there is)."""
        grid, levels = self.curve(index)
        keep = np.concatenate([[True], np.diff(levels) > 1e-12]) & (levels > 0)
        grid, levels = grid[keep], levels[keep]
        if len(grid) == 1:
            return float(levels[0]), float(levels[0]), float(grid[0])
        return float(levels[0]), float(levels[-1]), PchipInterpolator(np.log(levels), np.log(grid))

    def thresholds(self, cett: float) -> list[float]:
        return [self.threshold(i, cett) for i in range(len(self.layers))]


def _per_token_ratio(values: torch.Tensor, y_norm: torch.Tensor) -> torch.Tensor:
    """``values / ||y||`` row-wise, 0 for tokens whose FFN output is exactly zero."""
    y = y_norm.view(-1, 1)
    return torch.where(y > 0, values / y.clamp_min(1e-30), torch.zeros_like(values))


def cett_rule(thresholds: list[float], norms: list[torch.Tensor]):
    """Active iff ``|h_i| * ||W_down[:, i]|| >= t_l``."""

    def rule(layer: FFNLayer, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        w = norms[layer.index].to(device=h.device, dtype=h.dtype)
        return h.abs() * w >= thresholds[layer.index]

    return rule


class CETT(SparsityMetric):
    """CETT: per-layer thresholds t_l on |h_i| * ||W_down[:, i]|| giving the same truncation error c."""

    name = "cett"
    parameter = "cett"
    needs_cett_curves = True
    sweep_values = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4)

    def apply(self, value, *, curves: CETTCurves | None = None, layers=None) -> Applied:
        if value is None or not 0.0 <= value <= 1.0:
            raise ConfigError(f"--cett must be in [0, 1], got {value}")
        if curves is None:
            raise ValueError("CETT needs the dense pass's CETTCurves")
        thresholds = curves.thresholds(value)
        return Applied(
            rule=cett_rule(thresholds, curves.norms),
            setting={"cett": value},
            thresholds=thresholds,
            threshold_rule=THRESHOLD_RULE,
            magnitude_norms=curves.norms,
        )


register_metric(CETT())
