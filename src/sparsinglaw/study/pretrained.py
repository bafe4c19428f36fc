"""The paper's metric comparison on a real pretrained model (docs/paper.md section 2): PPL ratio versus
activation ratio for Top-k, FAT-eps and CETT on one shared dense pass, plus the PPL-p% solution on it, over
the built-in corpus."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.measure import MeasureConfig, Measurement
from sparsinglaw.metrics.pplp_solve import activation_source, solve
from sparsinglaw.metrics.pplp_trend import interpolate_in_log_c
from sparsinglaw.models.loading import load_model

# Few settings per metric (one sparse pass each), spread over the PPL ratios 1.00-1.10 on SmolLM2-135M.
COMPARISON_VALUES = {"topk": [0.6, 0.7, 0.8, 0.9], "fat": [0.05, 0.1, 0.15, 0.2], "cett": [0.02, 0.05, 0.08, 0.1]}


def _values(n_points: int) -> dict[str, list[float]]:
    """``n_points`` settings per metric (2 to 4), always including each list's ends; CETT gets its ends
    only, since the PPL-p% search's passes (at least two, near the crossing) fill its middle."""
    keep = {2: (0, 3), 3: (0, 2, 3), 4: (0, 1, 2, 3)}[min(4, max(2, n_points))]
    values = {k: [v[i] for i in keep] for k, v in COMPARISON_VALUES.items()}
    values["cett"] = [COMPARISON_VALUES["cett"][0], COMPARISON_VALUES["cett"][-1]]
    return values


def start_from(points: list[dict], p: float) -> float | None:
    """Where the PPL-p% search starts: the crossing of 1 + p/100 read off the CETT points already measured
    (log(ratio - 1) is close to linear in log c there), so the search needs about two passes, not four."""
    known = sorted((q["value"], q["ppl_ratio"] - 1) for q in points if q["metric"] == "cett" and q["ppl_ratio"] > 1)
    if len(known) < 2:
        return None
    (c0, e0), (c1, e1) = known[0], known[-1]
    if e1 <= e0:
        return None
    slope = math.log(e1 / e0) / math.log(c1 / c0)
    return float(min(max(c0 * (p / 100 / e0) ** (1 / slope), 1e-3), 0.5))


def answer_point(points: list[dict], c: float, p: float) -> dict:
    """The PPL-p% point at the answer CETT c without a pass of its own: the activation ratio read in log c
    between the CETT points measured around c (as ``sparsinglaw measure`` reports it, with how far the
    nearest pass is), the PPL ratio the trend's, 1 + p/100, by the answer's definition."""
    cett = {q["value"]: q["activation_ratio"] for q in points if q["metric"] == "cett"}  # one per CETT value
    cetts = sorted(cett)
    ratio = interpolate_in_log_c(cetts, np.array([cett[v] for v in cetts]), np.array(math.log(c)))
    return {"cett": c, "activation_ratio": float(np.clip(ratio, 0.0, 1.0)), "ppl_ratio": 1 + p / 100,
            "ppl_ratio_from": "trend", **activation_source(cetts, c)}


def metric_comparison(model_path: str | Path, *, hidden_act: str | None = None, max_tokens: int = 2048,
                      seq_len: int = 256, n_points: int = 4, p: float = 1.0) -> dict:
    """(activation ratio, PPL ratio) per metric setting and the PPL-p% point, on ``max_tokens`` tokens.
    The CETT curve's points are its fixed settings plus the PPL-p% search's own passes."""
    started = time.perf_counter()
    model, tokenizer = load_model(str(model_path), hidden_act=hidden_act or None)
    data = build_eval_data(tokenizer, builtin_documents(), seq_len=seq_len, max_tokens=max_tokens)
    measurement = Measurement(model, data, MeasureConfig(metric="pplp", p=p, batch_size=4, level=0.0))
    measurement.dense(cett_curves=True)
    points = []

    def add(name: str, value: float, evaluation) -> None:
        points.append({"metric": name, "value": value, "activation_ratio": evaluation.activity.activation_ratio,
                       "ppl_ratio": measurement.ppl_ratio(evaluation)})

    for name, settings in _values(n_points).items():
        for value in settings:
            add(name, value, measurement.at(name, value))
    start = start_from(points, p)
    if start is not None:
        measurement.config.start_cett = start
    solved = solve(measurement)  # the PPL-p% answer on the same dense pass (MeasureConfig.solution)
    for evaluation in solved.evaluations:
        add("cett", float(evaluation.applied.setting["cett"]), evaluation)
    pplp = {"p": p, **answer_point(points, float(solved.facts["cett"]), p),
            "converged": bool(solved.facts.get("converged")), "sparse_passes": len(solved.evaluations)}
    points.sort(key=lambda q: (q["metric"], q["value"]))
    n_params = sum(p.numel() for p in model.parameters())
    return {"model": Path(model_path).name, "parameters": int(n_params), "tokens": int(data.n_tokens),
            "sequences": int(data.input_ids.shape[0]), "seq_len": seq_len, "text": "built-in corpus",
            "points": points, "pplp": pplp, "seconds": time.perf_counter() - started}


def run_to_file(path: str | Path, key: dict, threads: int = 1) -> dict:
    """``metric_comparison`` for ``key`` (the study's settings), written to ``path`` with the key."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    result = metric_comparison(key["model"], hidden_act=key["hidden_act"] or None, max_tokens=key["tokens"],
                               n_points=key["points"], p=key["p"])
    atomic_write_json(Path(path), {"key": key, **result})
    return result


if __name__ == "__main__":  # the study runs the comparison in a process of its own, beside training
    import json
    import sys

    run_to_file(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]))
