"""A measured activation curve: (training tokens, activation ratio) points, validated.

The laws of docs/paper.md section 3 take D in billions of tokens (the published fits use
``D = token_passed / 1e9``); ``Curve.d`` gives that scale, ``Curve.tokens`` keeps raw token counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparsinglaw.errors import ConfigError, DataError

TOKEN_SCALE = 1e9  # D = tokens / 1e9 (docs/paper.md section 3)


@dataclass(frozen=True)
class Curve:
    """Validated points of one model's activation ratio during training."""

    tokens: np.ndarray
    ratio: np.ndarray
    name: str = "curve"
    activation: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", np.asarray(self.tokens, dtype=float))
        object.__setattr__(self, "ratio", np.asarray(self.ratio, dtype=float))
        validate_points(self.tokens, self.ratio, self.name)

    @property
    def d(self) -> np.ndarray:
        """Tokens in billions, the D of the laws."""
        return self.tokens / TOKEN_SCALE

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, mask: np.ndarray, suffix: str = "") -> Curve:
        return Curve(self.tokens[mask], self.ratio[mask], self.name + suffix, self.activation, self.meta)

    def skip_warmup(self, skip_tokens: float | None = None, skip_fraction: float | None = None) -> Curve:
        """Drop warmup points: those before ``skip_tokens`` tokens, or the first ``skip_fraction``."""
        keep = np.ones(len(self), dtype=bool)
        if skip_tokens:
            if skip_tokens < 0:
                raise ConfigError(f"--skip-tokens must be >= 0, got {skip_tokens}")
            keep &= self.tokens >= skip_tokens
        if skip_fraction:
            if not 0 <= skip_fraction < 1:
                raise ConfigError(f"--skip-fraction must be in [0, 1), got {skip_fraction}")
            keep[: int(np.floor(skip_fraction * len(self)))] = False
        if keep.sum() == 0:
            raise DataError(f"{self.name}: warmup exclusion leaves no points")
        return self.subset(keep)


def validate_points(tokens: np.ndarray, ratio: np.ndarray, name: str) -> None:
    """Raise DataError for empty, NaN, negative, unsorted or duplicated points."""
    if tokens.ndim != 1 or tokens.shape != ratio.shape:
        raise DataError(f"{name}: tokens and activation ratios must be 1-D of equal length "
                        f"(got {tokens.shape} and {ratio.shape})")
    if len(tokens) == 0:
        raise DataError(f"{name}: no points")
    if not (np.all(np.isfinite(tokens)) and np.all(np.isfinite(ratio))):
        raise DataError(f"{name}: NaN or infinite value in tokens or activation ratio")
    if np.any(tokens <= 0):
        raise DataError(f"{name}: token counts must be positive (smallest is {tokens.min():g})")
    if np.any(ratio < 0) or np.any(ratio > 1):
        raise DataError(f"{name}: activation ratios must lie in [0, 1] (range {ratio.min():g}..{ratio.max():g})")
    steps = np.diff(tokens)
    if np.any(steps == 0):
        raise DataError(f"{name}: duplicated token count {tokens[1:][steps == 0][0]:g}")
    if np.any(steps < 0):
        raise DataError(f"{name}: token counts are not sorted (at index {int(np.argmax(steps < 0)) + 1})")


_NAME = re.compile(r"(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>[mb])[_-](?P<act>[a-z0-9]+)", re.IGNORECASE)


def parse_name(stem: str) -> dict[str, Any]:
    """Model size and activation from names like ``0.4b_relu`` (the paper's files); {} if no match."""
    m = _NAME.search(stem)
    if not m:
        return {}
    scale = 1e9 if m["unit"].lower() == "b" else 1e6
    return {"size_label": f"{m['size']}{m['unit'].upper()}", "size": float(m["size"]) * scale,
            "activation": m["act"].lower()}
