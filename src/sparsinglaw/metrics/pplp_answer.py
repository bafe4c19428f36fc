"""When a PPL-p% trend search has an answer it can stand behind, and when it has none (issue 29).

Confirmation. The trend's standard error says how well the passes pin the crossing *if the local power law
holds*. It does not see a trend that bends between the passes and the answer, nor, with two passes, scatter
that every token shares. So an answer counts as converged only when a pass within CONFIRM_WIDTH (log c) of it
reads, within the tolerance, what the trend says there: on SmolLM2 (4,096 tokens of licence text) a search
that stopped on two passes put its answer 10.9% beyond them, where a pass read 1.0115 against the target
1.0100. Within CONFIRM_WIDTH the trend moves the ratio by at most slope * CONFIRM_WIDTH of log r (0.06 of it at
slope 10, 6e-4 at p = 1), so the pass is read against the trend's value at its own CETT, not the target.

A pass can also be the answer itself (``self_confirmation``, issue 29 point 3): it reads the target within
the tolerance, and the trend at its CETT is within the tolerance of the target by at least the trend's
standard error. The confirming pass is then at distance 0 from the answer. On SmolLM2 a pass reading 1.0102
at CETT 0.0417 cost a further pass at the crossing 0.0413 (1% away), which read 1.0101.

No answer. Some searches cannot have one, and then no number is reported:

- saturated high: the pass at the largest setting (CETT 1, or sparsity 0.99) reads below the target and no pass
  reaches it;
- saturated low: the pass at the smallest setting already reads at or above the target;
- out of range: at the budget, the trend through the passes crosses outside the settings that exist.

Passes whose PPL ratio is at most 1 (seen on licence text with the input family: 0.948, 0.975) are outside the
model ``log r = exp(...) > 0``; they enter the fit at a small positive floor (``floored``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sparsinglaw.metrics.pplp import C_MAX, C_MIN, FRESH_GAP

CONFIRM_WIDTH = 2 * FRESH_GAP  # a pass this close (log c) to the answer can confirm it
NON_MONOTONE_SD = 4.0
FLOOR_SHARE = 0.1  # log ratios below this share of log(target) enter the fit at it (``floored``)  # a larger setting reading this many noise sd (of a difference) lower is not noise


def cett_label(c: float) -> str:
    return f"CETT {c:.4g}"


def trend_ratio(log_target: float, slope: float, log_cett: float, log_c: float) -> float:
    """The trend's PPL ratio at log c: ``log r = log target * exp(slope (log c - x*))`` (the fitted model
    ``log r = exp(a + s (log c - x0))`` written around its crossing x*)."""
    return math.exp(log_target * math.exp(slope * (log_c - log_cett)))


def confirmation(cetts: list[float], ratios: np.ndarray, log_cett: float, slope: float, target: float,
                 tol: float, label: Callable[[float], str] = cett_label) -> dict | None:
    """The pass nearest the answer log c* checked against the trend there; None when no pass is within
    CONFIRM_WIDTH of it (the answer then needs a pass of its own before it can count as converged)."""
    x = np.log(np.asarray(cetts, dtype=np.float64))
    gaps = np.abs(x - log_cett)
    i = int(np.argmin(gaps))
    if gaps[i] > CONFIRM_WIDTH:
        return None
    expected = trend_ratio(math.log(target), slope, log_cett, float(x[i]))
    measured = float(ratios[i])
    return {"setting": label(cetts[i]), "cett": float(cetts[i]), "ppl_ratio": measured,
            "trend_ratio": expected, "distance": float(gaps[i]), "confirmed": abs(measured - expected) <= tol}


def self_confirmation(cetts: list[float], ratios: np.ndarray, log_cett: float, slope: float, target: float,
                      tol: float, se: float, label: Callable[[float], str] = cett_label) -> dict | None:
    """A pass that is an answer by itself: it reads the target within the tolerance, the trend at its CETT is
    within the tolerance of the target by at least the trend's standard error ``se`` (so the trend, not one
    pass's noise, puts it there), and the two agree within the tolerance (the confirmation check at
    distance 0). Of several, the one where the trend is nearest the target; None when no pass qualifies."""
    x, ratios = np.log(np.asarray(cetts, dtype=np.float64)), np.asarray(ratios, dtype=np.float64)
    trend = np.array([trend_ratio(math.log(target), slope, log_cett, float(v)) for v in x])
    good = ((np.abs(ratios - target) <= tol) & (np.abs(trend - target) + se <= tol)
            & (np.abs(ratios - trend) <= tol))
    if not np.any(good):
        return None
    i = int(np.argmin(np.where(good, np.abs(trend - target), np.inf)))
    return {"setting": label(cetts[i]), "cett": float(cetts[i]), "ppl_ratio": float(ratios[i]),
            "trend_ratio": float(trend[i]), "distance": 0.0, "crossing_distance": float(abs(x[i] - log_cett)),
            "confirmed": True, "answer": "the pass itself"}


def confirmation_warning(check: dict | None, tol: float) -> str:
    """Why an answer is not confirmed, in words that agree with its numbers."""
    if check is None:
        return (f"no pass lies within {CONFIRM_WIDTH:.1%} (log) of the answer to confirm it; the answer rests on the "
                "trend alone")
    return (f"the pass at {check['setting']} ({check['distance']:.2%} from the answer) reads PPL ratio "
            f"{check['ppl_ratio']:.4f} where the trend gives {check['trend_ratio']:.4f}: off by "
            f"{abs(check['ppl_ratio'] - check['trend_ratio']):.4f}, more than the tolerance {tol:g}")


def saturation_reason(cetts: list[float], ratios: np.ndarray, target: float,
                      label: Callable[[float], str] = cett_label) -> str | None:
    """'No answer' when the passes show that no setting meets the target (see the module docstring)."""
    if C_MAX in cetts and not np.any(ratios >= target):
        r = float(ratios[cetts.index(C_MAX)])
        return (f"no answer: PPL ratio {r:.4f} at {label(C_MAX)}, the largest setting, is below the target "
                f"{target:.4f}, and no pass reaches it: no setting meets the target")
    if C_MIN in cetts and ratios[cetts.index(C_MIN)] >= target:
        r = float(ratios[cetts.index(C_MIN)])
        return (f"no answer: PPL ratio {r:.4f} at {label(C_MIN)}, the smallest setting, already meets or exceeds "
                f"the target {target:.4f}")
    return None


def range_reason(log_cett: float, target: float, label: Callable[[float], str] = cett_label) -> str | None:
    """'No answer' when the trend crosses the target outside the settings that exist."""
    if math.log(C_MIN) - 1e-9 <= log_cett <= math.log(C_MAX) + 1e-9:
        return None
    side = "above the largest" if log_cett > 0 else "below the smallest"
    return (f"no answer: the trend through the passes crosses {target:.4f} at c = {math.exp(log_cett):.3g}, "
            f"{side} setting ({label(C_MAX if log_cett > 0 else C_MIN)})")


def floored(log_r: np.ndarray, target: float) -> np.ndarray:
    """The log ratios the power-law trend is fitted to: each at least FLOOR_SHARE of log(target). A pass at or
    below 1 is censored data: it says the trend is small there, which the positive model can only take as a
    small positive value; left out, it told the fit nothing, and on a tiny model whose passes read 0.993 near
    the crossing extrapolated from two passes above the target the search proposed the same CETT 8 times."""
    return np.maximum(np.asarray(log_r, dtype=np.float64), FLOOR_SHARE * math.log(target))


def below_one_warning(cetts: list[float], ratios: np.ndarray, label: Callable[[float], str] = cett_label) -> str | None:
    low = [(c, r) for c, r in zip(cetts, ratios) if r <= 1.0]
    if not low:
        return None
    shown = ", ".join(f"{r:.4f} at {label(c)}" for c, r in sorted(low)[:3])
    return (f"{len(low)} pass(es) read a PPL ratio at or below 1 ({shown}): the sparse model does better than "
            "the dense one there; the trend's fit takes them at a tenth of the target's log ratio")


def non_monotone_warning(cetts: list[float], ratios: np.ndarray, noise_sd: float,
                         label: Callable[[float], str] = cett_label) -> str | None:
    """A pair of passes where the larger setting reads lower by more than NON_MONOTONE_SD sd of a difference:
    the trend model assumes a rising ratio; the answer reported is where the fit crosses."""
    order = np.argsort(cetts)
    c, r = np.asarray(cetts)[order], np.asarray(ratios)[order]
    slack = NON_MONOTONE_SD * math.sqrt(2) * noise_sd
    for i in range(len(c)):
        later = np.nonzero(r[i + 1:] < r[i] - slack)[0]
        if len(later):
            k = i + 1 + int(later[0])
            return (f"PPL ratio is not monotone in the setting beyond its noise ({r[i]:.4f} at {label(c[i])} but "
                    f"{r[k]:.4f} at {label(c[k])}, noise sd {noise_sd:.2g}); the answer is where the trend fitted "
                    "through every pass crosses the target")
    return None


__all__ = ["CONFIRM_WIDTH", "below_one_warning", "cett_label", "confirmation", "confirmation_warning",
           "floored", "non_monotone_warning", "range_reason", "saturation_reason", "self_confirmation",
           "trend_ratio"]
