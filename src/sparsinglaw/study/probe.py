"""Measurements a report needs beyond the tracked store: the metric comparison and per-token detail, on each
cell's last complete checkpoint over its validation split, written to ``OUT_DIR/probes.json``."""

from __future__ import annotations

import logging
from pathlib import Path

from sparsinglaw.data.tokenizer import load_tokenizer
from sparsinglaw.errors import DataError
from sparsinglaw.measure import MeasureConfig, measure, sweep
from sparsinglaw.store import runs
from sparsinglaw.study.collect import CellData
from sparsinglaw.track.tracker import load_checkpoint, validation_data

PARETO_VALUES = {"topk": [0.1, 0.25, 0.5, 0.8], "fat": [0.002, 0.01, 0.05, 0.2], "cett": [0.02, 0.05, 0.1, 0.2]}


def last_checkpoint(cell: CellData) -> Path:
    last = runs.last_complete_checkpoint(cell.run_dir)
    if last is None:
        raise DataError(f"{cell.run_dir}: no complete checkpoint")
    return Path(last)


def _model_and_data(cell: CellData, max_tokens: int):
    return load_checkpoint(last_checkpoint(cell)), validation_data(cell.run_dir, max_tokens)


def pareto(cell: CellData, n_points: int, max_tokens: int = 1024) -> list[dict]:
    """(activation ratio, PPL ratio) of Top-k, FAT-eps and CETT settings on the cell's last checkpoint."""
    model, data = _model_and_data(cell, max_tokens)
    values = {k: v[:n_points] if n_points < len(v) else v for k, v in PARETO_VALUES.items()}
    return sweep(model, data, values, MeasureConfig(metric="cett", batch_size=8))


def detail(cell: CellData, p: float = 1.0, max_tokens: int = 1024, detail_tokens: int = 256) -> dict:
    """PPL-p% on the last checkpoint with per-layer neuron frequencies and per-token activation ratios."""
    model, data = _model_and_data(cell, max_tokens)
    try:
        tokenizer = load_tokenizer(str(cell.run_dir / "tokenizer"))
    except Exception:  # noqa: BLE001 - token strings are a nicety; ids are shown without a tokenizer
        tokenizer = None
    config = MeasureConfig(metric="pplp", p=p, batch_size=8, level=0.0, neuron_frequency=True,
                           detail_tokens=min(detail_tokens, data.n_tokens))
    result = measure(model, data, config, tokenizer=tokenizer, model_name=cell.name)
    return {"cell": cell.name, "checkpoint": last_checkpoint(cell).name, "activation_ratio": result.activation_ratio,
            "neuron_frequency": result.neuron_frequency, "token_detail": result.token_detail}


def _detail_cells(analysis) -> list[CellData]:
    """Cells of the first scale group (the per-token scatter compares two of its sizes), else up to 3."""
    by_name = {c.name: c for c in analysis.cells if c.points}
    names = [m["curve"] for m in analysis.scale[0]["models"]] if analysis.scale else list(by_name)[:3]
    return [by_name[n] for n in names if n in by_name]


def probe_study(analysis, p: float = 1.0, *, with_pareto: bool = True) -> dict:
    """What the report draws beyond the store and the fits: per-layer frequencies and per-token ratios on
    each chosen cell's last checkpoint, the pair of sizes for the per-token scatter, and (``with_pareto``)
    the metric comparison on a cell. Failures are logged and leave the piece out."""
    log = logging.getLogger("sparsinglaw")
    details = []
    for cell in _detail_cells(analysis):
        try:
            details.append(detail(cell, p=p))
        except Exception as err:  # noqa: BLE001 - a missing figure panel must not stop the study
            log.warning("cannot measure %s for the detail figures: %s", cell.name, err)
    pair = None
    with_tokens = [i for i, d in enumerate(details) if d["token_detail"]]
    if analysis.scale and len(with_tokens) >= 2:
        a, b = with_tokens[0], with_tokens[-1]
        if details[a]["token_detail"]["token_ids"] == details[b]["token_detail"]["token_ids"]:
            pair = [a, b]
    out = {"details": details, "pair": pair, "pareto": None}
    chosen = next((c for c in analysis.cells if c.points), None)
    if with_pareto and chosen is not None:
        out["pareto"] = {"cell": chosen.name, "checkpoint": last_checkpoint(chosen).name,
                         "points": pareto(chosen, analysis.spec.pareto_points)}
    return out
