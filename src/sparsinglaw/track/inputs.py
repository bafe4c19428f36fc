"""Input sparsity at a training run's checkpoints: what ``sparsinglaw track --input-sparsity`` records.

The input CETT method in the output metric's tracking modes, driven by ``track.tracker`` through
``ProjectionInputRows``: ``cett-calibrated`` (one input c calibrated on the last K checkpoints' trend,
applied to each with a 90% interval) or ``pplp`` (solved per checkpoint, no interval). Two store rows per checkpoint: ``input-MODE`` (the
parameter-weighted kept share) and ``input-bytes-MODE`` (weight bytes read per token over dense)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sparsinglaw.errors import NoAnswerError
from sparsinglaw.inputs.measure import InputConfig, InputEvaluation, InputMeasurement
from sparsinglaw.inputs.results import MethodResult

METHOD = "cett"  # tracked input-sparsity method: ours, the CETT way


def input_config(settings, **overrides) -> InputConfig:
    """The input measurement of ``TrackSettings``: our method only, at its p, tolerance and batch size
    (``overrides``: other ``InputConfig`` fields, such as a warm ``start_cett``)."""
    return InputConfig(methods=(METHOD,), p=settings.p, tolerance=settings.tolerance, batch_size=settings.batch_size,
                       **overrides)


def _by_block(result: MethodResult) -> list[float]:
    """Kept share per block, weighted by projection size (the per-layer view of the output metric)."""
    totals: dict[int, list[float]] = {}
    for p in result.projections:
        acc = totals.setdefault(p.block, [0.0, 0.0])
        acc[0] += p.kept_share * p.in_features * p.out_features
        acc[1] += p.in_features * p.out_features
    return [a / b for _, (a, b) in sorted(totals.items())]


def result_document(m: InputMeasurement, result: MethodResult, name: str, interval: dict | None,
                    solution: dict[str, Any]) -> dict[str, Any]:
    """One checkpoint's input-sparsity row (the ``result`` JSON of its ``input-MODE`` row)."""
    warnings = list(result.warnings)
    if interval is None and solution.get("method") == "cett-calibrated":
        warnings.append(f"no interval: fewer than 8 validation sequences ({m.dense_losses.nll.numel()}) or "
                        "inputs not counted per sequence")
    return {"model": name, "method": METHOD, "rule": result.rule, "setting": {"cett": result.value},
            "kept_share": result.kept_share, "activation_ratio": result.kept_share,
            "bytes_ratio": result.bytes_ratio, "bytes_per_token": result.bytes_per_token,
            "dense_bytes_per_token": m.bytes_per_token(), "bytes_per_weight": m.config.bytes_per_weight,
            "ppl_ratio": result.ppl_ratio, "sparse_ppl": result.sparse_ppl, "dense_ppl": m.dense_losses.ppl,
            "dense_loss": m.dense_losses.mean_nll, "kept_by_kind": result.kept_by_kind(),
            "kept_by_block": _by_block(result), "n_sequences": m.data.n_sequences, "n_tokens": m.data.n_tokens,
            "interval": interval, "solution": solution, "search": result.search, "warnings": warnings}


def at_calibrated(m: InputMeasurement, c: float, name: str, calibration: dict, level: float = 0.9) -> dict:
    """One checkpoint at the calibrated input CETT, with its interval."""
    evaluation: InputEvaluation = m.evaluate(m.setting(METHOD, c))
    result = m.method_result(evaluation, "cett")
    interval = m.kept_interval(evaluation, level)
    return result_document(m, result, name, interval, {"method": "cett-calibrated", **calibration})


def solved(m: InputMeasurement, p: float, name: str) -> dict:
    """One checkpoint's input PPL-p% (the trend search over the input CETT)."""
    result = m.solve(METHOD, p)
    if result.no_answer:  # saturated at input CETT 1: kept as a bound, flagged (as output tracking does)
        if not (result.search and result.search[-1]["value"] == 1.0 and "below the target" in result.no_answer):
            raise NoAnswerError(f"{name}: {result.no_answer}")
        result.value, result.solution["bound"] = 1.0, "input CETT 1 (" + result.no_answer + ")"
    return result_document(m, result, name, None, result.solution.to_dict())


def store_rows(store, info: dict, document: dict, setting: dict, metrics: tuple[str, str]) -> None:
    """The kept-share row and the bytes row of one checkpoint."""
    kept_metric, bytes_metric = metrics
    run_id, checkpoint, tokens = info["run_id"], Path(info["path"]).name, info["tokens_seen"]
    store.record(run_id, checkpoint, tokens, kept_metric, setting=setting, value=document["kept_share"],
                 activation_ratio=document["kept_share"], result=document)
    iv = document.get("interval") or {}
    bytes_doc = {"bytes_ratio": document["bytes_ratio"], "bytes_per_token": document["bytes_per_token"],
                 "dense_bytes_per_token": document["dense_bytes_per_token"], "setting": document["setting"],
                 "interval": {"level": iv["level"], "bytes_ratio": iv["bytes_ratio"]} if iv else None}
    store.record(run_id, checkpoint, tokens, bytes_metric, setting=setting, value=document["bytes_ratio"],
                 result=bytes_doc)


class ProjectionInputRows:
    """The projection-input target's tracking (``track.tracker.FFNNeuronRows`` is the FFN neurons'): two
    rows per checkpoint (``store_rows``), our method's input CETT calibrated or solved."""

    label, what, reuses_calibration = "input CETT", "its input sparsity", True

    def metric(self, settings, mode: str) -> str:
        return settings.input_metrics[0]

    def measurement(self, model, data, settings, **start) -> InputMeasurement:
        return InputMeasurement(model, data, input_config(settings, **start))

    def solve(self, model, data, settings, start: dict, name: str) -> dict:
        with torch.no_grad():
            return solved(self.measurement(model, data, settings, **start), settings.p, name)

    def dense(self, m: InputMeasurement) -> None:
        m.dense()

    def losses(self, m: InputMeasurement, c: float) -> np.ndarray:
        return m.evaluate(m.setting(METHOD, c)).losses.nll.numpy()

    def at_calibrated(self, m: InputMeasurement, c: float, name: str, calibration: dict) -> dict:
        return at_calibrated(m, c, name, calibration)

    def store(self, store, info: dict, document: dict, settings, metric: str) -> None:
        store_rows(store, info, document, settings.setting(), settings.input_metrics)

    def reading(self, document: dict) -> tuple:
        return document["setting"].get("cett"), document.get("kept_share"), document.get("ppl_ratio"), "kept share"


__all__ = ["METHOD", "ProjectionInputRows", "at_calibrated", "input_config", "result_document", "solved",
           "store_rows"]
