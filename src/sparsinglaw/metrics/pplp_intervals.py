"""Intervals of PPL-p% answers and of passes at a fixed setting, by one resampling (docs/paper.md 2.6):
units (blocks of tokens, ``metrics.blocks``, in the groups the caller gives) drawn with replacement.

The trend's answer (``trend_interval``): each resample's ratios at the evaluated CETTs are refitted (same
noise weights, ``metrics.pplp_trend``) for its crossing, and its activation ratio is interpolated there in
log c. The lowest-crossing answer (``crossing_interval``) finds its lowest crossing again per resample; a
pass at a fixed setting (``setting_interval``, calibrated tracking) reads its ratios per resample. Every
percentile interval is Hesterberg's "expanded percentile" one (the tail levels widened by
sqrt(n / (n - 1)) t_{n-1} / z), since a plain bootstrap over few units is too narrow. Below MIN_SEQUENCES
units no interval is given.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from sparsinglaw.metrics.pplp import C_MAX, C_MIN, lowest_crossings
from sparsinglaw.metrics.pplp_answer import floored
from sparsinglaw.metrics.pplp_trend import (
    LOCAL_WIDTH,
    MIN_SEQUENCES,
    TrendFit,
    TrendSearch,
    fit_rows,
    interpolate_in_log_c,
    local_sigma,
)


def expanded_levels(n: int, level: float) -> tuple[float, float]:
    """Hesterberg's expanded percentile tails: z_{a'/2} = sqrt(n/(n-1)) t_{n-1, a/2}."""
    tail = (1 - level) / 2
    z = math.sqrt(n / (n - 1)) * float(stats.t.ppf(1 - tail, n - 1))
    widened = float(stats.norm.sf(z))
    return widened, 1 - widened


def resampling_weights(units: int, groups: np.ndarray | None, samples: int,
                       seed: int) -> tuple[np.ndarray, int]:
    """(samples x units weights, n): bootstrap counts of n groups (``groups``, one per unit; None: each unit
    its own), each unit weighted by its group's count."""
    groups = np.arange(units) if groups is None else np.asarray(groups)
    n = int(groups.max()) + 1
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)[:, groups], n


def trend_interval(search: TrendSearch, fit: TrendFit, seq_active: list[np.ndarray], seq_slots: list[np.ndarray],
                   level: float, samples: int, seed: int, groups: np.ndarray | None = None) -> dict:
    """Expanded-percentile bootstrap interval of the crossing CETT and its activation ratio; ``groups`` (one
    per block, ``metrics.blocks.interval_groups``): the units resampled, else each block."""
    weights, n = resampling_weights(len(search.tokens), groups, samples, seed)
    tok = weights @ search.tokens
    log_r = np.stack([weights @ (s - search.dense_nll) for s in search.sparse_nll], axis=1) / tok[:, None]
    x, log_r = np.log(np.asarray(search.cetts)), floored(log_r, search.target)  # as the answer's fit
    sigma = local_sigma(x, fit.noise_sd, search.target, fit.log_cett)
    # A resample whose trend crosses far from every pass is extrapolating: held at the edge of what the passes
    # cover (and counted), so the percentiles stay inside [C_MIN, C_MAX].
    low, high = max(x.min() - LOCAL_WIDTH, math.log(C_MIN)), min(x.max() + LOCAL_WIDTH, math.log(C_MAX))
    x_star = np.clip(fit_rows(x, log_r, sigma, math.log(search.target), search.prior)[0], low, high)
    act = np.stack([weights @ a for a in seq_active], axis=1) / np.maximum(
        np.stack([weights @ s for s in seq_slots], axis=1), 1e-30)
    act_star = np.clip(interpolate_in_log_c(search.cetts, act, x_star), 0.0, 1.0)
    lo_q, hi_q = expanded_levels(n, level)
    outside = np.mean((x_star <= low) | (x_star >= high))
    return {
        "level": level, "samples": samples,
        "cett": [float(np.exp(np.quantile(x_star, lo_q))), float(np.exp(np.quantile(x_star, hi_q)))],
        "activation_ratio": [float(np.quantile(act_star, lo_q)), float(np.quantile(act_star, hi_q))],
        "censored_fraction": float(outside),
        "method": ("expanded percentile bootstrap over the search's units (blocks of tokens, in groups of one "
                   "sequence's consecutive blocks where given), trend refitted per resample"),
    }


def setting_interval(dense_nll: np.ndarray, tokens: np.ndarray, sparse_nll: np.ndarray, seq_active: np.ndarray,
                     seq_slots: np.ndarray, level: float, samples: int, seed: int,
                     groups: np.ndarray | None = None) -> dict | None:
    """Expanded-percentile interval of the activation ratio and PPL ratio of one pass at a fixed setting
    (calibrated tracking), resampling the units given (evaluation sequences, or blocks of tokens in
    ``groups`` as ``trend_interval``); None below MIN_SEQUENCES resampled."""
    weights, n = resampling_weights(len(tokens), groups, samples, seed)
    if n < MIN_SEQUENCES:
        return None
    ratio = np.exp(weights @ (sparse_nll - dense_nll) / (weights @ tokens))
    act = weights @ seq_active / np.maximum(weights @ seq_slots, 1e-30)
    lo_q, hi_q = expanded_levels(n, level)
    return {"level": level, "samples": samples, "sequences": n,
            "activation_ratio": [float(np.quantile(act, lo_q)), float(np.quantile(act, hi_q))],
            "ppl_ratio": [float(np.quantile(ratio, lo_q)), float(np.quantile(ratio, hi_q))],
            "method": "expanded percentile bootstrap over evaluation sequences at the calibrated CETT"}


def crossing_interval(dense_nll: np.ndarray, tokens: np.ndarray, sparse_nll: list[np.ndarray],
                      seq_active: list[np.ndarray], seq_slots: list[np.ndarray], cetts: list[float], target: float,
                      level: float, samples: int, seed: int, groups: np.ndarray | None = None) -> dict | None:
    """Expanded-percentile interval of the lowest-crossing answer (``MeasureConfig.solution``) and its
    activation ratio, resampling the units ``trend_interval`` does; None below MIN_SEQUENCES resampled."""
    weights, n = resampling_weights(len(tokens), groups, samples, seed)
    if n < MIN_SEQUENCES or not cetts:
        return None
    order = np.argsort(cetts)
    tok = weights @ tokens
    dense = weights @ dense_nll / tok
    ratio = np.stack([np.exp(weights @ sparse_nll[k] / tok - dense) for k in order], axis=1)  # (B, K)
    act = np.stack([weights @ seq_active[k] / np.maximum(weights @ seq_slots[k], 1e-30) for k in order], axis=1)
    crossing_c, crossing_a, censored = lowest_crossings(np.asarray(cetts)[order], ratio, act, target)
    lo_q, hi_q = expanded_levels(n, level)
    return {"level": level, "samples": samples,
            "cett": [float(np.quantile(crossing_c, lo_q)), float(np.quantile(crossing_c, hi_q))],
            "activation_ratio": [float(np.quantile(crossing_a, lo_q)), float(np.quantile(crossing_a, hi_q))],
            "censored_fraction": float(censored),
            "method": ("expanded percentile bootstrap over the search's units (as the trend's interval), lowest "
                       "crossing interpolated between evaluated CETTs")}


__all__ = ["crossing_interval", "expanded_levels", "resampling_weights", "setting_interval", "trend_interval"]
