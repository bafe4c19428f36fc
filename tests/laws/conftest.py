"""Shared fixtures for the law-fitting tests: the paper's measured curves and published coefficients."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("SPARSINGLAW_LAW_DATA", REPO.parent / "shared/reference/sparsing-law-data"))

# PAPER.md section 3: ReLU (alpha, b, c, A0); SiLU (alpha, c, A0).
PUBLISHED = {
    "0.1b_relu": [(0.101, -0.0151, 3.20, 0.0614)],
    "0.2b_relu": [(0.449, -3.05, 0.286, 0.0674)],
    "0.4b_relu": [(0.683, -3.46, 0.079, 0.0690)],
    "0.8b_relu": [(1.01, -3.49, 7.97e-3, 0.0721)],
    "1.2b_relu": [(1.33, -3.89, 9.03e-4, 0.0782)],
    "2.4b_relu": [(1.53, -3.46, 1.56e-4, 0.0648), (2.11, -3.82, 9.04e-6, 0.0712)],
    "0.1b_silu": [(0.479, 0.102, 0.409)],
    "0.2b_silu": [(0.844, 0.208, 0.390)],
    "0.4b_silu": [(1.03, 0.420, 0.385)],
    "0.8b_silu": [(0.995, 0.562, 0.383)],
    "1.2b_silu": [(0.967, 0.538, 0.382)],
}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"paper data not found at {DATA_DIR} (set SPARSINGLAW_LAW_DATA)")
    return DATA_DIR


@pytest.fixture
def relu_truth() -> dict:
    """A 0.2B-like ReLU curve (published parameters) on a 30-point grid, D in billions."""
    return {"params": np.array([0.449, -3.05, 0.286, 0.0674]), "d": np.linspace(2.84, 85.0, 30)}


@pytest.fixture
def silu_truth() -> dict:
    """A 0.4B-like SiLU curve on a 40-point grid."""
    return {"params": np.array([0.9, 0.27, 0.385]), "d": np.linspace(3.6, 145.0, 40)}
