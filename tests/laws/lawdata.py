"""Published coefficients (PAPER.md section 3) and where the paper's measured curves lie (test data)."""

from __future__ import annotations

import os
from pathlib import Path

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
