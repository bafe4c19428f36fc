"""A prepared study directory for the report tests: the analysis files written by the study's own stage
functions from hand-made measurements (no training, no model), and the probes as the probe stage writes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.store.layout import PROBES

TOKENS = [65_536 * (i + 1) for i in range(10)]


def _cell(act: str, ratios, half_width: float):
    from sparsinglaw.study.collect import CellData

    cell = CellData(f"{act}-d64-L4", act, Path("."), 64, 4, 1.9e5, TOKENS[-1], metric="cett-calibrated")
    cell.points = [(t, float(a)) for t, a in zip(TOKENS, ratios)]
    cell.intervals = {t: (a - half_width, a + half_width) for t, a in cell.points}
    cell.interval_level = 0.9
    cell.dead = [(t, 0.01) for t in TOKENS]
    cell.losses = [(t, 6.0 - 0.1 * i) for i, t in enumerate(TOKENS)]
    cell.setting = {"p": 1.0}
    cell.epochs = 0.5
    return cell


def _probes(cells) -> dict:
    rng = np.random.default_rng(0)
    details = [{"cell": c.name, "checkpoint": "checkpoint-10", "activation_ratio": c.points[-1][1],
                "neuron_frequency": rng.uniform(0, 1, (4, 32)).tolist(),
                "token_detail": {"tokens": [f"t{i}" for i in range(16)], "token_ids": list(range(16)),
                                 "token_ratio": rng.uniform(0, 0.5, 16).tolist()}} for c in cells]
    points = [{"metric": m, "value": v, "activation_ratio": a, "ppl_ratio": 1 + 0.2 * (1 - a) ** 2}
              for m in ("topk", "fat", "cett") for v, a in ((0.1, 0.2), (0.5, 0.5), (0.8, 0.8))]
    return {"details": details, "pair": None, "pareto": {"cell": cells[0].name, "checkpoint": "checkpoint-10",
                                                         "points": points}}


def prepare_study_dir(path: Path) -> Path:
    """``path`` holding fits.json, comparison.json, paper.json, setup.json and probes.json of a ReLU
    (falling) and a SiLU (rising) model: what ``sparsinglaw study`` leaves for the report."""
    from sparsinglaw.study.config import FitSpec
    from sparsinglaw.study.fit import analyze
    from sparsinglaw.study.stages import write_documents

    rng = np.random.default_rng(1)
    relu = _cell("relu", np.linspace(0.12, 0.08, 10) + rng.normal(0, 0.001, 10), 0.004)
    silu = _cell("silu", 0.4 - 0.2 * np.power(np.array(TOKENS) / TOKENS[0], -0.5) + rng.normal(0, 0.002, 10), 0.004)
    analysis = analyze([relu, silu], FitSpec(n_boot=20, skip_fraction=0.2))
    path.mkdir(parents=True, exist_ok=True)
    write_documents(path, analysis, {"name": "prepared", "kind": "study"})
    atomic_write_json(path / PROBES, _probes([relu, silu]))
    return path


def read(path: Path, name: str) -> dict:
    return json.loads((path / name).read_text(encoding="utf-8"))
