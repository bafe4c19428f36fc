"""The paper's published curves and fits, for the report to show beside a study's: ``paper_curves()`` (the
shipped curves, or ``SPARSINGLAW_PAPER_DATA``) and ``paper_document()``, ``paper.json``: every curve with its
published fit sampled over its tokens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sparsinglaw.laws.io import read_curve
from sparsinglaw.laws.paper import load_paper_curve, paper_coefficients, paper_curve_names

# Published fits, D in billions of tokens. ReLU: A = exp(-c D^alpha + b) + A0; SiLU: A = -c D^(-alpha) + A0.
PUBLISHED_FITS = {name: dict(paper_coefficients(name).params) for name in paper_curve_names()}
PUBLISHED_MAE = {name: paper_coefficients(name).mae for name in paper_curve_names()
                 if paper_coefficients(name).mae is not None}
FIT_SAMPLES = 80  # points of each published fit's drawn curve


def published_law(name: str, tokens: np.ndarray) -> np.ndarray:
    """The published fit of ``name`` (e.g. ``0.1b_relu``) at ``tokens`` (not billions)."""
    f, d = PUBLISHED_FITS[name], np.asarray(tokens, float) / 1e9
    if name.endswith("_relu"):
        return np.exp(-f["c"] * d ** f["alpha"] + f["b"]) + f["A0"]
    return -f["c"] * d ** (-f["alpha"]) + f["A0"]


def _row(name: str, curve) -> dict:
    act = "relu" if name.endswith("relu") else "silu"
    return {"name": name, "activation": act, "tokens": [float(t) for t in curve.tokens],
            "ratio": [float(r) for r in curve.ratio], "fit": PUBLISHED_FITS.get(name)}


def paper_curves() -> list[dict]:
    """The paper's measured curves: ``{"name", "activation", "tokens", "ratio", "fit"}`` each (fit: the
    published coefficients, or None); [] when the override folder holds none."""
    folder = os.environ.get("SPARSINGLAW_PAPER_DATA")
    if not folder:
        return [_row(name, load_paper_curve(name)) for name in paper_curve_names()]

    return [_row(path.stem, read_curve(path)) for path in sorted(Path(folder).glob("*.json"))]


def paper_document() -> dict:
    """``paper.json``: the curves, each published fit drawn over its curve's tokens, and the 0.1B values
    the report's coefficient table shows beside the study's."""
    curves = paper_curves()
    for row in curves:
        row["fit_curve"] = None
        if row["fit"] and row["tokens"]:
            grid = np.geomspace(min(row["tokens"]), max(row["tokens"]), FIT_SAMPLES)
            row["fit_curve"] = {"tokens": grid.tolist(), "ratio": published_law(row["name"], grid).tolist()}
    return {"curves": curves, "published": PUBLISHED_FITS, "published_mae": PUBLISHED_MAE}
