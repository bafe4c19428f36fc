"""Fixtures for the law-fitting tests (constants live in lawdata.py: import from there, never from conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lawdata import DATA_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The paper's curves as shipped with the package (never absent, so these tests always run)."""
    return DATA_DIR


@pytest.fixture
def relu_truth() -> dict:
    """A 0.2B-like ReLU curve (published parameters) on a 30-point grid, D in billions."""
    return {"params": np.array([0.449, -3.05, 0.286, 0.0674]), "d": np.linspace(2.84, 85.0, 30)}


@pytest.fixture
def silu_truth() -> dict:
    """A 0.4B-like SiLU curve on a 40-point grid."""
    return {"params": np.array([0.9, 0.27, 0.385]), "d": np.linspace(3.6, 145.0, 40)}
