"""The paper's published curves and fits (PAPER.md section 3), for the report to show beside a study's.

``paper_curves()`` is the one place that knows where the measured curves live: the package data of
``sparsinglaw.laws.paper`` when it is installed, else the reference directory (``SPARSINGLAW_PAPER_DATA``
or ``/work/shared/reference/sparsing-law-data``) read with ``sparsinglaw.laws.io``. With neither, it
returns an empty list and the report says so in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Published fits, D in billions of tokens. ReLU: A = exp(-c D^alpha + b) + A0; SiLU: A = -c D^(-alpha) + A0.
PUBLISHED_FITS = {
    "0.1b_relu": {"alpha": 0.101, "b": -0.0151, "c": 3.20, "A0": 0.0614},
    "0.2b_relu": {"alpha": 0.449, "b": -3.05, "c": 0.286, "A0": 0.0674},
    "0.4b_relu": {"alpha": 0.683, "b": -3.46, "c": 0.079, "A0": 0.0690},
    "0.8b_relu": {"alpha": 1.01, "b": -3.49, "c": 7.97e-3, "A0": 0.0721},
    "1.2b_relu": {"alpha": 1.33, "b": -3.89, "c": 9.03e-4, "A0": 0.0782},
    "2.4b_relu": {"alpha": 1.53, "b": -3.46, "c": 1.56e-4, "A0": 0.0648},
    "0.1b_silu": {"alpha": 0.479, "c": 0.102, "A0": 0.409},
    "0.2b_silu": {"alpha": 0.844, "c": 0.208, "A0": 0.390},
    "0.4b_silu": {"alpha": 1.03, "c": 0.420, "A0": 0.385},
    "0.8b_silu": {"alpha": 0.995, "c": 0.562, "A0": 0.383},
    "1.2b_silu": {"alpha": 0.967, "c": 0.538, "A0": 0.382},
}
REFERENCE_DIR = Path("/work/shared/reference/sparsing-law-data")


def published_law(name: str, tokens: np.ndarray) -> np.ndarray:
    """The published fit of ``name`` (e.g. ``0.1b_relu``) at ``tokens`` (not billions)."""
    f, d = PUBLISHED_FITS[name], np.asarray(tokens, float) / 1e9
    if name.endswith("_relu"):
        return np.exp(-f["c"] * d ** f["alpha"] + f["b"]) + f["A0"]
    return -f["c"] * d ** (-f["alpha"]) + f["A0"]


def _from_package() -> list[dict] | None:
    try:
        from sparsinglaw.laws.paper import load_paper_curve, paper_curve_names
    except ImportError:
        return None
    return [_row(name, load_paper_curve(name)) for name in paper_curve_names()]


def _row(name: str, curve) -> dict:
    tokens = getattr(curve, "tokens", None)
    ratio = getattr(curve, "ratio", None)
    if tokens is None and isinstance(curve, dict):
        tokens, ratio = curve.get("token_passed"), curve.get("activation_ratio")
    act = "relu" if name.endswith("relu") else "silu"
    return {"name": name, "activation": act, "tokens": [float(t) for t in tokens], "ratio": [float(r) for r in ratio],
            "fit": PUBLISHED_FITS.get(name)}


def paper_curves() -> list[dict]:
    """The paper's measured curves: ``{"name", "activation", "tokens", "ratio", "fit"}`` each (fit: the
    published coefficients, or None); [] when no copy of them is available."""
    rows = _from_package()
    if rows is not None:
        return rows
    folder = Path(os.environ.get("SPARSINGLAW_PAPER_DATA") or REFERENCE_DIR)
    if not folder.is_dir():
        return []
    from sparsinglaw.laws.io import read_curve

    return [_row(path.stem, read_curve(path)) for path in sorted(folder.glob("*.json"))]
