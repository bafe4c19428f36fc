"""The verdict vocabulary of the study's checks against the paper (``study.compare``, ``study.resolvable``).

Each check gives one of three verdicts, never more than the intervals support: ``agrees`` (the interval
lies on the paper's side), ``disagrees`` (it lies on the other side) or ``inconclusive`` (the interval
straddles, or the quantity is not identified / not measured).
"""

from __future__ import annotations

import numpy as np

# How close the limits of different sizes must be to count as "similar": the spread the paper reports for
# one activation across 0.1B-2.4B models (ReLU 0.061-0.078, SiLU 0.38-0.41; docs/paper.md section 3).
SIMILAR_ACROSS_SIZES = 0.03


def side_verdict(low: float, high: float, sign: int) -> str:
    if sign * low > 0 and sign * high > 0:
        return "agrees"
    if sign * low < 0 and sign * high < 0:
        return "disagrees"
    return "inconclusive"


def verdict_row(claim: str, paper: str, found: str, verdict: str) -> dict[str, str]:
    return {"claim": claim, "paper": paper, "found": found, "verdict": verdict}


def after_warmup(points: list, skip_fraction: float) -> list:
    """The points the trends are judged on: the first ``skip_fraction`` of checkpoints dropped."""
    return points[int(np.floor(skip_fraction * len(points))):]
