"""The paper's reference, shipped with the package: its eleven measured curves and published fits.

The curves behind the fits of docs/paper.md section 3 (``paper_data/*.json``, released by the authors)
load through the ordinary curve reader; the published coefficients are kept as data by parameter name
(``sparsinglaw fit --paper NAME``).

>>> from sparsinglaw.laws.paper import load_paper_curve, paper_coefficients, paper_curve_names
>>> paper_curve_names()[:3]
['0.1b_relu', '0.1b_silu', '0.2b_relu']
>>> curve = load_paper_curve("0.1b_relu")
>>> len(curve), curve.activation, curve.meta["size_label"]
(28, 'relu', '0.1B')
>>> fit = paper_coefficients("0.1b_relu")
>>> fit.law, fit.params["A0"]
('relu', 0.0614)
>>> round(fit.mae_on(curve), 6)   # the paper reports MAE 4.07e-4 for this fit
0.000407"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sparsinglaw.laws.curve import Curve
from sparsinglaw.laws.families import LAWS
from sparsinglaw.laws.io import read_curve
from sparsinglaw.registry import Registry

DATA_PACKAGE = "sparsinglaw.laws"
DATA_FOLDER = "paper_data"


@dataclass(frozen=True)
class PaperFit:
    """One published fit: the law family, its parameters by name, and the paper's error where given."""

    curve: str
    law: str
    params: dict[str, float]
    mae: float | None = None
    mse: float | None = None
    note: str = ""
    # Further published parameter sets for the same curve (2.4B ReLU: an earlier fit on fewer points).
    alternatives: tuple[dict[str, float], ...] = field(default=())

    @property
    def vector(self) -> np.ndarray:
        """The parameters in the law's order (``Law.param_names``), ready for ``LAWS[law](d, vector)``."""
        return np.array([self.params[k] for k in LAWS[self.law].param_names])

    def sets(self) -> list[dict[str, float]]:
        """Every published parameter set, the main one first."""
        return [self.params, *self.alternatives]

    def mae_on(self, curve: Curve) -> float:
        """Mean absolute error of the main published parameters on ``curve``'s points (D in billions)."""
        return float(np.mean(np.abs(LAWS[self.law](curve.d, self.vector) - curve.ratio)))

    def describe(self) -> str:
        """``relu: alpha=0.101, b=-0.0151, c=3.2, A0=0.0614`` (the main set)."""
        return f"{self.law}: " + ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())

    def to_dict(self) -> dict[str, Any]:
        return {"curve": self.curve, "law": self.law, "params": dict(self.params), "mae": self.mae,
                "mse": self.mse, "note": self.note, "alternatives": [dict(a) for a in self.alternatives]}


def _relu(alpha: float, b: float, c: float, a0: float) -> dict[str, float]:
    return {"alpha": alpha, "b": b, "c": c, "A0": a0}


def _silu(alpha: float, c: float, a0: float) -> dict[str, float]:
    return {"alpha": alpha, "c": c, "A0": a0}


# docs/paper.md section 3 (the paper's fits on D = token_passed / 1e9, all points).
_FITS: dict[str, PaperFit] = {fit.curve: fit for fit in (
    PaperFit("0.1b_relu", "relu", _relu(0.101, -0.0151, 3.20, 0.0614), mae=4.07e-4, mse=2.68e-7,
             note="logarithmic baseline on the same points: MAE 3.42e-3"),
    PaperFit("0.2b_relu", "relu", _relu(0.449, -3.05, 0.286, 0.0674)),
    PaperFit("0.4b_relu", "relu", _relu(0.683, -3.46, 0.079, 0.0690)),
    PaperFit("0.8b_relu", "relu", _relu(1.01, -3.49, 7.97e-3, 0.0721)),
    PaperFit("1.2b_relu", "relu", _relu(1.33, -3.89, 9.03e-4, 0.0782)),
    PaperFit("2.4b_relu", "relu", _relu(1.53, -3.46, 1.56e-4, 0.0648),
             note="an earlier fit on fewer points is listed as an alternative",
             alternatives=(_relu(2.11, -3.82, 9.04e-6, 0.0712),)),
    PaperFit("0.1b_silu", "silu", _silu(0.479, 0.102, 0.409)),
    PaperFit("0.2b_silu", "silu", _silu(0.844, 0.208, 0.390)),
    PaperFit("0.4b_silu", "silu", _silu(1.03, 0.420, 0.385)),
    PaperFit("0.8b_silu", "silu", _silu(0.995, 0.562, 0.383)),
    PaperFit("1.2b_silu", "silu", _silu(0.967, 0.538, 0.382)),
)}


def _data_folder() -> Path:
    # An installed wheel and an editable checkout both keep package data as real files next to the
    # modules, so a plain Path is enough (no zip imports: the package ships C sources compiled on use).
    return Path(str(resources.files(DATA_PACKAGE) / DATA_FOLDER))


def _curve_files() -> Registry[Path]:
    files: Registry[Path] = Registry("paper curve")
    for path in sorted(_data_folder().glob("*.json")):
        files.register(path.stem, path)
    return files


_FILES = _curve_files()


def _key(name: str) -> str:
    return name.strip().lower().removesuffix(".json")


def paper_curve_names() -> list[str]:
    """The packaged curves, sorted: ``0.1b_relu`` ... ``2.4b_relu`` (eleven)."""
    return _FILES.names()


def paper_curve_path(name: str) -> Path:
    """The packaged JSON file of curve ``name`` (ConfigError listing the names if unknown)."""
    return _FILES.get(_key(name))


def load_paper_curve(name: str) -> Curve:
    """The paper's measured curve ``name`` (e.g. ``"0.4b_relu"``), read like any other curve file."""
    curve = read_curve(paper_curve_path(name))
    curve.meta["reference"] = "paper"
    return curve


def paper_coefficients(name: str) -> PaperFit:
    """The published fit of curve ``name`` (ConfigError listing the names if unknown)."""
    paper_curve_path(name)  # the same unknown-name message for both lookups
    return _FITS[_key(name)]


def paper_table() -> str:
    """The packaged curves, one aligned line each: points, token range and the published fit."""
    lines = [f"{'curve':<10} {'points':>6} {'tokens':>17}  published fit (docs/paper.md section 3; published without intervals)"]
    for name in paper_curve_names():
        curve, fit = load_paper_curve(name), paper_coefficients(name)
        span = f"{curve.tokens[0]:.3g}-{curve.tokens[-1]:.3g}"
        extra = f" (+{len(fit.alternatives)} earlier)" if fit.alternatives else ""
        lines.append(f"{name:<10} {len(curve):>6} {span:>17}  {fit.describe()}{extra}")
    return "\n".join(lines)
