"""The noise of a PPL-p% trend search's passes: each pass's PPL ratio scatters around the trend of the same
tokens (``metrics.pplp_trend``, "Noise"). The estimators below measure that scatter from the per-unit losses
of the passes near the crossing and pool it with a prior; the stop rule trusts the result."""

from __future__ import annotations

import math

import numpy as np

PAIR_WIDTH = 0.05  # two passes this close (log c) share one shape well enough to measure the noise
SHAPE_WIDTH = 0.1  # three or more this close measure it with each sequence its own level and slope
PRIOR_DOF = 6  # the prior noise counts as this many degrees of freedom when pooled with a measured one
PRIOR_NOISE = 0.027  # ratio sd times sqrt(evaluation tokens), SmolLM2-135M at p = 1


def rank1_noise(tokens: np.ndarray, dense_nll: np.ndarray, sparse_nll: list[np.ndarray], target: float) -> float | None:
    """The ratio's sd around its trend from how the passes' per-sequence loss changes depart from one shared
    shape: sequence j's mean change per token at pass k is ``s_j g(c_k)`` (each sequence its own
    sensitivity, every sequence the same trend) plus fresh noise. A rank-1 fit of the sqrt(tokens)-weighted
    (sequences x passes) matrix leaves residuals of per-token variance v with (n - 1)(K - 1) degrees of
    freedom; the pooled ratio then scatters by target * sqrt(v / tokens). None below 3 sequences or 2 passes."""
    n, k = len(tokens), len(sparse_nll)
    if n < 3 or k < 2:
        return None
    t = np.asarray(tokens, dtype=np.float64)
    change = np.stack([(np.asarray(s, dtype=np.float64) - dense_nll) / t for s in sparse_nll], axis=1)
    singular = np.linalg.svd(np.sqrt(t)[:, None] * change, compute_uv=False)
    per_token_var = float(np.sum(singular[1:] ** 2)) / ((n - 1) * (k - 1))
    return target * math.sqrt(per_token_var / float(t.sum()))


def own_shape_noise(tokens: np.ndarray, dense_nll: np.ndarray, sparse_nll: list[np.ndarray], cetts: list[float],
                    target: float) -> float | None:
    """The ratio's sd around the trend of these very tokens, with each sequence its own level *and* its own
    log-slope: sequence j's mean change per token at pass k is ``g_k (alpha_j + beta_j (log c_k - xbar))``,
    g the pooled change, fitted per sequence, plus fresh noise of per-token variance v, estimated from the
    residuals with (n - 1)(K - 2) degrees of freedom. Why not ``rank1_noise`` there: sequences' trends differ
    in slope as well as level (which sequences were drawn, the sampling error the interval reports, which
    more passes cannot reduce), and a rank-1 fit counts that difference as scatter. On a 28-CETT scan of
    SmolLM2's 512-token benchmark slice (scatter of CETTs 2% apart: 0.0011), 4 passes spread over 0.4 in
    log c gave 0.0023 by rank 1 and 0.0016 this way; over 0.1, 0.0013 and 0.0012. None below 3 sequences or
    3 passes."""
    n, k = len(tokens), len(sparse_nll)
    if n < 3 or k < 3:
        return None
    t = np.asarray(tokens, dtype=np.float64)
    change = np.stack([(np.asarray(s, dtype=np.float64) - dense_nll) / t for s in sparse_nll], axis=1)  # (n, K)
    pooled = t @ change / t.sum()
    x = np.log(np.asarray(cetts, dtype=np.float64))
    basis = np.stack([pooled, pooled * (x - x.mean())], axis=1)  # (K, 2)
    coefficients = np.linalg.lstsq(basis, change.T, rcond=None)[0]
    residual = change - (basis @ coefficients).T
    per_token_var = float(np.sum(t[:, None] * residual**2)) / ((n - 1) * (k - 2))
    return target * math.sqrt(per_token_var / float(t.sum()))


def local_noise(tokens: np.ndarray, dense_nll: np.ndarray, sparse_nll: list[np.ndarray], cetts: list[float],
                target: float, centre: float) -> tuple[float, int] | None:
    """(sd, degrees of freedom) of the ratio around the same tokens' trend from the passes close to
    ``centre`` (log c): ``own_shape_noise`` over the passes within SHAPE_WIDTH when there are three, else
    ``rank1_noise`` over two within PAIR_WIDTH; None without such passes. Wider spreads are not used: there
    the sequences' different trends (the sampling error, which more passes do not reduce) dominate what
    either estimator counts as scatter (SmolLM2, 512 tokens: rank 1 over two passes 2% apart in c gave
    0.0012, 7% apart 0.0018, 18% apart 0.0026)."""
    x = np.log(np.asarray(cetts))
    n = len(tokens)
    local = [i for i in range(len(cetts)) if abs(x[i] - centre) <= SHAPE_WIDTH]
    if len(local) >= 3:
        sd = own_shape_noise(tokens, dense_nll, [sparse_nll[i] for i in local], [cetts[i] for i in local], target)
        return sd, (n - 1) * (len(local) - 2)
    pair = [i for i in local if abs(x[i] - centre) <= PAIR_WIDTH]
    if len(pair) >= 2:
        return rank1_noise(tokens, dense_nll, [sparse_nll[i] for i in pair], target), (n - 1) * (len(pair) - 1)
    return None


def pass_noise(tokens: np.ndarray, dense_nll: np.ndarray, sparse_nll: list[np.ndarray], cetts: list[float],
               target: float, log_r: np.ndarray):
    """(sd used to weight the fit, sd the stop rule trusts, source) of the ratio around its trend.

    What the stop rule needs is the scatter of each pass's ratio around the trend *of the same tokens*: the
    passes share their tokens, so only that part of the error shrinks with more passes; the sampling error
    across token draws is the interval's business. It is measured from the passes close to the crossing
    (``local_noise``) and pooled with the prior as PRIOR_DOF degrees of freedom (the measured figure
    alone has 3-7 on 512 tokens: a lucky low one stopped searches early, a high one cost passes). Without
    close passes the measurement is ``rank1_noise`` over every pass, an upper bound (it counts the
    sequences' different trends as scatter), and the smaller of it and the prior is used. Before two passes
    exist: the prior, which the stop rule never trusts alone."""
    total = float(np.sum(tokens))
    prior = PRIOR_NOISE * target / math.sqrt(max(total, 1.0))
    floor = 1e-9  # losses that do not scatter at all (a deterministic toy) still need a finite weight
    if len(cetts) < 2 or len(tokens) < 3:
        return prior, math.inf, "prior"
    centre = float(np.log(cetts)[int(np.argmin(np.abs(log_r - math.log(target))))])
    measured = local_noise(tokens, dense_nll, sparse_nll, cetts, target, centre)
    if measured is None:
        bound = max(rank1_noise(tokens, dense_nll, sparse_nll, target), floor)
        sd = max(min(bound, prior), floor)
        return sd, sd, "prior (below the upper bound from every pass)" if sd == prior else "sequences (upper bound)"
    sd, dof = measured
    pooled = math.sqrt((PRIOR_DOF * prior**2 + dof * sd**2) / (PRIOR_DOF + dof))
    return max(pooled, floor), max(pooled, floor), "sequences near the crossing, pooled with the prior"


__all__ = ["PAIR_WIDTH", "PRIOR_DOF", "PRIOR_NOISE", "SHAPE_WIDTH", "local_noise", "own_shape_noise", "pass_noise",
           "rank1_noise"]
