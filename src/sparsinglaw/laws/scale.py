"""Parameter-scale analyses (docs/paper.md section 4).

- ``compare_limits``: the limit A0 across model sizes with intervals and identification (the paper: at
  similar width-depth ratio A0 varies weakly with scale, ReLU 6.1%..7.8%, SiLU 40.9%..38.2%).
- ``convergence_speed``: dA/dD along a common grid of tokens per parameter, ``D = tpp * N / 1e9`` with
  ``N = 11.5 d^2 L`` non-embedding parameters for the paper's shapes (smaller models converge faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsinglaw.errors import DataError
from sparsinglaw.laws.curve import TOKEN_SCALE
from sparsinglaw.laws.results import FitResult

# hidden size d x layers L of the paper's gated models (docs/paper.md section 4)
PAPER_SHAPES = {"0.1B": (768, 16), "0.2B": (1024, 20), "0.4B": (1280, 24), "0.8B": (1536, 28),
                "1.2B": (1792, 32), "2.4B": (2304, 40)}


def non_embedding_params(hidden: int, layers: int) -> float:
    """N = 11.5 d^2 L: attention 4 d^2 plus gated FFN 3 * 2.5 d^2 per layer (docs/paper.md section 4)."""
    return 11.5 * hidden**2 * layers


def params_for(result: FitResult, meta: dict[str, Any]) -> float:
    """N for a curve: the paper's shape for its size label, else ``n_params`` / ``size`` metadata."""
    label = str(meta.get("size_label", "")).upper()
    if label in PAPER_SHAPES:
        return non_embedding_params(*PAPER_SHAPES[label])
    for key in ("n_params", "size"):
        if meta.get(key):
            return float(meta[key])
    raise DataError(f"{result.curve}: model size unknown (name it like 0.4b_relu or give n_params)")


@dataclass(frozen=True)
class ScaleRow:
    """One model's limit and its convergence speed at the common tokens-per-parameter grid."""

    curve: str
    law: str
    n_params: float
    limit: float | None
    low: float | None
    high: float | None
    identified: bool
    slope: list[float]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ScaleComparison:
    """A0 across sizes (spread over identified limits) and dA/dD versus tokens per parameter."""

    rows: list[ScaleRow]
    tokens_per_param: list[float]
    spread: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"tokens_per_param": self.tokens_per_param, "limit_spread": self.spread,
                "models": [r.to_dict() for r in self.rows]}


def slope_at(result: FitResult, d: np.ndarray) -> np.ndarray:
    """dA/dD (per billion tokens) by central differences in log D."""
    h = 1e-4
    up, down = result.predict(d * np.exp(h)), result.predict(d * np.exp(-h))
    return (up - down) / (d * (np.exp(h) - np.exp(-h)))


def convergence_speed(result: FitResult, n_params: float, tokens_per_param: np.ndarray) -> np.ndarray:
    """dA/dD at D = tokens_per_param * N / 1e9 (NaN outside the curve's measured token range)."""
    d = np.asarray(tokens_per_param, dtype=float) * n_params / TOKEN_SCALE
    out = slope_at(result, d)
    if result.d is not None:
        out[(d < result.d.min()) | (d > result.d.max())] = np.nan
    return out


def compare_limits(results: list[FitResult], n_params: list[float],
                   tokens_per_param: np.ndarray | None = None) -> ScaleComparison:
    """Limits and convergence speeds of several models, ordered by size."""
    if len(results) != len(n_params) or not results:
        raise DataError("scale comparison needs one parameter count per fitted curve")
    if tokens_per_param is None:
        tokens_per_param = np.geomspace(10, 1000, 5)
    rows = []
    for res, n in sorted(zip(results, n_params, strict=True), key=lambda rn: rn[1]):
        lim = res.limit
        iv = lim.interval if lim else None
        rows.append(ScaleRow(res.curve, res.law, float(n), lim.value if lim else None,
                             iv.low if iv else None, iv.high if iv else None, bool(lim and lim.identified),
                             [float(x) for x in convergence_speed(res, n, tokens_per_param)]))
    ok = [r.limit for r in rows if r.identified and r.limit is not None]
    spread = float(max(ok) - min(ok)) if len(ok) >= 2 else None
    return ScaleComparison(rows, [float(t) for t in tokens_per_param], spread)
