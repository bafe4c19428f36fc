"""Track sparsity across a run's checkpoints (docs/paper.md section 2), one store row per checkpoint,
metric and setting:

- ``pplp``: PPL-p% solved per checkpoint, each search starting from the nearest solved checkpoint's CETT
  (``warm_start``; each result records its search);
- ``cett-calibrated``: one CETT calibrated where the trend of the mean PPL ratio over the last K checkpoints
  crosses 1 + p/100, applied to every checkpoint with a 90% interval from resampling validation sequences
  (new checkpoints move the calibration, so this mode re-measures all).

``input_sparsity`` adds each projection's input sparsity (``track.inputs``, metrics ``input-MODE`` and
``input-bytes-MODE``). Evaluation uses the run's validation split; incomplete or unloadable checkpoints are
skipped, and completed ``pplp`` measurements are never redone, so ``track`` can run beside training."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from sparsinglaw import distributed
from sparsinglaw.data import EvalData
from sparsinglaw.errors import DataError, NoAnswerError, SparsingLawError
from sparsinglaw.measure import MeasureConfig, Measurement, build_result, measure
from sparsinglaw.metrics.pplp import C_MIN, C_START
from sparsinglaw.metrics.pplp_intervals import expanded_levels, resampling_weights, setting_interval
from sparsinglaw.metrics.pplp_trend import run_trend_search
from sparsinglaw.progress import partial_results
from sparsinglaw.store import runs
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import run_validation_sequences
from sparsinglaw.track.inputs import ProjectionInputRows
from sparsinglaw.track.settings import TrackSettings  # the one tracking-settings type (re-exported here)
from sparsinglaw.track.share import track_calibrated_once

log = logging.getLogger("sparsinglaw")

HISTOGRAM_BINS = 20


def validation_data(run_dir: Path, max_tokens: int):
    """The run's held-out validation sequences as measurement ``EvalData``."""
    path = Path(run_dir) / "data"
    sequences = run_validation_sequences(run_dir)  # the validation shards the run trains on (valid.npy before)
    if sequences is None:
        raise DataError(f"{path} holds no validation data: track needs the run's validation split (train the run "
                        "with data.validation_tokens > 0)")
    ids = torch.from_numpy(sequences.astype(np.int64))
    n = max(1, min(len(ids), max_tokens // ids.shape[1]))
    if len(ids) == 0:
        raise DataError(f"{path} holds no validation sequences")
    return EvalData(input_ids=ids[:n], source="validation split")


def load_checkpoint(path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model.eval()


def _measure_config(settings: TrackSettings, **kw):
    return MeasureConfig(p=settings.p, batch_size=settings.batch_size, tolerance=settings.tolerance,
                         neuron_frequency=True, level=0.0, **kw)


def summarize(result_dict: dict) -> dict:
    """The measurement result plus a per-neuron activation frequency histogram (all FFNs together)."""
    freqs = result_dict.pop("neuron_frequency", None) or []
    values = np.concatenate([np.asarray(f, dtype=float) for f in freqs]) if freqs else np.zeros(0)
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    result_dict["frequency_histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    return result_dict


def complete(run_dir: Path) -> list[dict]:
    """Complete checkpoints; incomplete ones are reported (they may still be being written)."""
    for _step, path in runs.checkpoint_dirs(run_dir):
        if runs.read_marker(path) is None:
            log.warning("skipping %s: no %s (incomplete or still being written)", path.name, runs.MARKER)
    return runs.complete_checkpoints(run_dir)


def _store_row(store, info: dict, result, setting: dict, metric: str) -> None:
    data = summarize(result.to_dict())
    store.record(info["run_id"], Path(info["path"]).name, info["tokens_seen"], metric, setting=setting,
                 value=data["activation_ratio"], activation_ratio=data["activation_ratio"], result=data)


def solved_cetts(store, run_id: str, setting: dict, metric: str = "pplp") -> dict[int, float]:
    """Tokens seen -> the CETT PPL-p% solved at, for the run's checkpoints already measured (``metric``:
    ``pplp``, or ``input-pplp`` for the input CETT)."""
    rows = store.measurements(run_id, metric, setting, with_result=True)
    return {r["tokens"]: float(r["result"]["setting"]["cett"]) for r in rows
            if r["result"] and isinstance(r["result"].get("setting", {}).get("cett"), float)}


def warm_start_setting(solved: dict[int, float], tokens: int) -> dict:
    """``start_cett`` of the measured checkpoint nearest in tokens (the earlier one on ties), if any."""
    if not solved:
        return {}
    nearest = min(solved, key=lambda t: (abs(t - tokens), t))
    return {"start_cett": min(max(solved[nearest], C_MIN), 0.99)}  # MeasureConfig wants start_cett < 1


def track_pplp(run_dir: Path, settings: TrackSettings, progress: Callable | None = None) -> dict:
    """PPL-p% at every complete checkpoint not yet measured, each claimed in the store first (concurrent
    trackers share the work); returns counts of measured/skipped/failed (``elsewhere``: claimed by another
    live process; ``inputs``: input sparsity's). If interrupted, says what it stored before re-raising."""
    store, data = ResultsStore(run_dir), validation_data(run_dir, settings.max_tokens)
    counts = _each_checkpoint(run_dir, store, data, settings, FFN_NEURONS, progress)
    if settings.input_sparsity:
        counts["inputs"] = _each_checkpoint(run_dir, store, data, settings, PROJECTION_INPUTS, None)
    return counts


def _each_checkpoint(run_dir: Path, store, data, settings: TrackSettings, rows, progress: Callable | None) -> dict:
    """``_measure_claimed`` on every complete checkpoint without a row of ``rows``' target, each claimed
    first; returns the counts."""
    metric = rows.metric(settings, "pplp")
    counts = {"measured": 0, "already": 0, "failed": 0, "elsewhere": 0}
    solved: dict[str, dict[int, float]] = {}  # per run id, read once and kept up to date by measure_claimed
    stored: list[str] = []
    name = None
    infos = complete(run_dir)
    try:
        for number, info in enumerate(infos, 1):
            name = Path(info["path"]).name
            key = (info["run_id"], name, metric, settings.setting())
            if store.has(*key):
                counts["already"] += 1
                continue
            if not store.claim(*key):
                counts["elsewhere"] += 1
                continue
            try:
                outcome = _measure_claimed(rows, store, info, data, settings, solved)
            finally:
                store.release(*key)
            counts[outcome[0]] = counts.get(outcome[0], 0) + 1
            if outcome[1] is not None:
                stored.append(name)
                _kept(metric, stored, store.path, "run track again for the rest")
                if progress:
                    progress(name, outcome[1])
            log.info("track %s: checkpoint %d of %d (%s) %s; %d left", metric, number, len(infos), name,
                     _reading(rows, outcome[1]) if outcome[1] is not None else outcome[0], len(infos) - number)
        name = None
    except KeyboardInterrupt:
        if name is not None and name not in stored and store.has(*key):  # stored just before the interrupt
            stored.append(name)
            _kept(metric, stored, store.path, "run track again for the rest")
        done = ", ".join(stored) if stored else "none"
        log.warning("track interrupted%s: stored %d checkpoint(s) of %s in %s (%s); run track again for the rest",
                    f" while measuring {name}" if name else "", len(stored), metric, store.path, done)
        raise
    if not counts["elsewhere"]:
        del counts["elsewhere"]
    return counts


def _reading(rows, found) -> str:
    """'at CETT 0.3 -> activation ratio 0.41, PPL ratio 1.0098' of what ``rows`` measured at a checkpoint."""
    cett, share, ratio, what = rows.reading(found)
    text = f"at CETT {cett:.4g} -> " if isinstance(cett, float) else "-> "
    text += f"{what} {share:.4f}" if share is not None else what + " -"
    return text + (f", PPL ratio {ratio:.4f}" if ratio is not None else "")


def _kept(metric: str, stored: list[str], where, then: str) -> None:
    """What Ctrl-C keeps of this metric so far (``progress.partial_results``, printed by the CLI)."""
    partial_results.kept(f"track {metric}", f"{len(stored)} checkpoint(s) of {metric} ({', '.join(stored)}) in "
                                            f"{where}; {then}")


def _measure_claimed(rows, store, info: dict, data, settings: TrackSettings, solved: dict) -> tuple[str, object]:
    """PPL-p% of ``rows``' target at one claimed checkpoint, warm-started from the nearest solved one, its
    rows stored: ("measured", what was measured), or ("no_answer" or "failed", None)."""
    name, run_id, metric = Path(info["path"]).name, info["run_id"], rows.metric(settings, "pplp")
    if settings.warm_start and run_id not in solved:
        solved[run_id] = solved_cetts(store, run_id, settings.setting(), metric)
    start = warm_start_setting(solved.get(run_id, {}), info["tokens_seen"])
    try:
        found = rows.solve(load_checkpoint(Path(info["path"])), data, settings, start, name)
    except (OSError, ValueError, RuntimeError, SparsingLawError) as err:
        log.warning("skipping %s: cannot measure %s (%s)", name, rows.what,
                    str(err).splitlines()[0] if str(err) else err)
        return "failed", None
    if found is None:  # no CETT to store: the next track tries again
        return "no_answer", None
    rows.store(store, info, found, settings, metric)
    if run_id in solved:
        solved[run_id][info["tokens_seen"]] = float(rows.reading(found)[0])
    return "measured", found


class FFNNeuronRows:
    """The FFN-neuron target's tracking: one row per checkpoint and mode (metric ``MODE``), a measure result
    with a frequency histogram (``summarize``). ``track.inputs.ProjectionInputRows`` is the input target's;
    the modes drive either through these methods."""

    label, what, reuses_calibration = "CETT", "it", False

    def metric(self, settings: TrackSettings, mode: str) -> str:
        return mode

    def measurement(self, model, data, settings: TrackSettings):
        return Measurement(model, data, _measure_config(settings, metric="cett"))

    def solve(self, model, data, settings: TrackSettings, start: dict, name: str):
        """PPL-p% of one checkpoint, or None (logged) without an answer."""
        result = measure(model, data, _measure_config(settings, metric="pplp", **start), model_name=name)
        reason = result.solution and result.solution.no_answer
        if reason and result.setting.get("p") is not None and result.search and result.search[-1]["cett"] == 1.0 \
                and "below the target" in reason:
            # Saturated: even CETT 1 keeps this checkpoint within PPL-p% (early in training its FFNs barely
            # count). Tracking records that pass as a bound, flagged, so the curve keeps its point.
            result.setting["cett"], result.solution["bound"] = 1.0, "CETT 1 (" + reason + ")"
            log.warning("%s: %s; its CETT 1 pass is stored as a bound", name, reason)
        elif reason:
            log.warning("skipping %s: %s", name, reason)
            return None
        return result

    def dense(self, measurement) -> None:
        measurement.dense(cett_curves=True)

    def losses(self, measurement, c: float) -> np.ndarray:
        return measurement.at("cett", c).losses.nll.numpy()

    def at_calibrated(self, measurement, c: float, name: str, calibration: dict):
        return _calibrated_result(measurement, c, name, calibration)

    def store(self, store, info: dict, result, settings: TrackSettings, metric: str) -> None:
        _store_row(store, info, result, settings.setting(), metric)

    def reading(self, result) -> tuple:
        return result.setting.get("cett"), result.activation_ratio, result.ppl_ratio, "activation ratio"


FFN_NEURONS, PROJECTION_INPUTS = FFNNeuronRows(), ProjectionInputRows()


def calibrate(dense: np.ndarray, tokens: np.ndarray, losses_at: Callable, p: float, tolerance: float,
              checkpoints: int, what: str = "calibrated CETT", max_passes: int = 24) -> tuple[float, dict]:
    """The c where the trend of the mean log PPL ratio of K checkpoints (``dense`` per-sequence NLL,
    ``tokens``, ``losses_at(c)`` their sparse NLL at c) crosses log(1 + p/100), by the PPL-p% trend search.
    Returns c and the search's facts."""
    search, outcome = run_trend_search(dense, tokens, losses_at, p=p, tolerance=tolerance, max_passes=max_passes,
                                       start=C_START, what=what)
    saturated = bool(outcome.no_answer) and search.cetts[-1] == 1.0 and "below the target" in outcome.no_answer
    if outcome.no_answer and not saturated:  # nothing calibrated to apply to the checkpoints
        raise NoAnswerError(f"{what}: {outcome.no_answer}")
    for warning in outcome.warnings:
        log.warning("%s: %s", what, warning)
    # Saturated (even CETT 1 stays within the target): CETT 1 is applied, as a bound, and flagged.
    c = 1.0 if saturated else float(min(max(outcome.fit.cett, C_MIN), 1.0))
    facts = {"cett": c, "sparse_passes": len(search.cetts), "standard_error": outcome.fit.se_ratio,
             "converged": outcome.converged, "warnings": list(outcome.warnings), "checkpoints": checkpoints}
    if saturated:
        facts["bound"] = "CETT 1 (" + outcome.no_answer + ")"
    return c, facts


def _pooled_losses(rows, measurements: list) -> tuple[np.ndarray, np.ndarray, Callable]:
    """(dense NLL, tokens, ``losses_at(c)``) of K checkpoints' measurements side by side, for ``calibrate``."""
    for m in measurements:
        rows.dense(m)
    dense = np.concatenate([m.dense_losses.nll.numpy() for m in measurements])
    tokens = np.concatenate([m.dense_losses.tokens.double().numpy() for m in measurements])
    return dense, tokens, lambda c: np.concatenate([rows.losses(m, c) for m in measurements])


def _calibrated_result(measurement, c: float, name: str, calibration: dict, level: float = 0.9):
    """One checkpoint at the calibrated CETT, with the interval of its activation and PPL ratios."""
    measurement.per_sequence_neurons = True  # counts per sequence and neuron: the population's intervals
    evaluation = measurement.at("cett", c)
    result = build_result(measurement, evaluation, model_name=name)
    dense = measurement.dense_losses
    result.interval = setting_interval(
        dense.nll.numpy(), dense.tokens.double().numpy(), evaluation.losses.nll.numpy(),
        evaluation.activity.seq_active.numpy(), evaluation.activity.seq_slots.numpy(), level, 1000, 0)
    if result.interval is None:
        result.warnings.append(f"no interval: fewer than 8 validation sequences ({dense.nll.numel()})")
    else:  # the dead and live-neuron ratios' intervals, from the same resampled sequences
        weights, n = resampling_weights(dense.nll.numel(), None, 1000, 0)  # setting_interval's own draws
        population = evaluation.activity.population_interval(weights, expanded_levels(n, level),
                                                             measurement.config.dead_threshold)
        result.interval.update(population or {})
    result.solution = {"method": "cett-calibrated", **calibration}
    return result


CALIBRATED_REST = ("the other checkpoints keep the rows of an earlier track, if any: run track again to measure all "
                   "at one CETT")


def _kept_calibration(metric: str, c: float, checkpoints: int) -> None:
    """Ctrl-C after the calibration says what it found (each row measured at it stores it too)."""
    partial_results.kept(f"track {metric}", f"the {metric} calibration, CETT {c:.4g} on the last {checkpoints} "
                                            "checkpoint(s) (not stored: no checkpoint measured at it yet)")


class _StoredAt:
    """The checkpoints whose rows at one calibrated CETT this call has stored (``_noting_rows``)."""

    def __init__(self, store, metric: str, setting: dict, c: float, label: str):
        self.store, self.metric, self.setting, self.c, self.label = store, metric, setting, c, label
        self.names: list[str] = []
        self.current: dict | None = None  # the checkpoint being measured

    def add(self, info: dict) -> None:
        self.names.append(Path(info["path"]).name)
        _kept(self.metric, self.names, self.store.path,
              f"at the calibrated {self.label} {self.c:.4g}; {CALIBRATED_REST}")

    def written(self, info: dict) -> bool:
        """Whether the store holds ``info``'s row at this CETT (an interrupt can land after the write)."""
        name = Path(info["path"]).name
        return any(r["checkpoint"] == name and (r["result"] or {}).get("setting", {}).get("cett") == self.c
                   for r in self.store.measurements(info["run_id"], self.metric, self.setting, with_result=True))


@contextmanager
def _noting_rows(store, metric: str, setting: dict, c: float, label: str):
    """A ``_StoredAt`` that, on Ctrl-C, also counts the checkpoint whose row was written just before it."""
    stored = _StoredAt(store, metric, setting, c, label)
    try:
        yield stored
    except KeyboardInterrupt:
        info = stored.current
        if info is not None and Path(info["path"]).name not in stored.names and stored.written(info):
            stored.add(info)
        raise


def track_calibrated(run_dir: Path, settings: TrackSettings) -> dict:
    """One CETT calibrated on the last K checkpoints, applied to all (re-measured each time); with
    ``input_sparsity`` one input CETT the same way (``summary["inputs"]``)."""
    infos = complete(run_dir)
    if not infos:
        return {"measured": 0, "cett": None}
    data = validation_data(run_dir, settings.max_tokens)
    summary = _calibrated_rows(FFN_NEURONS, run_dir, infos, data, settings)
    if settings.input_sparsity:
        summary["inputs"] = _calibrated_rows(PROJECTION_INPUTS, run_dir, infos, data, settings)
    return summary


def _calibrated_rows(rows, run_dir: Path, infos: list[dict], data, settings: TrackSettings) -> dict:
    """One CETT of ``rows``' target calibrated on the last K checkpoints (``calibrate``), applied to every
    checkpoint: its rows stored with their intervals."""
    metric = rows.metric(settings, "cett-calibrated")
    last = {i["path"]: rows.measurement(load_checkpoint(Path(i["path"])), data, settings)
            for i in infos[-settings.calibrate_last:]}
    with torch.no_grad():
        c, calibration = calibrate(*_pooled_losses(rows, list(last.values())), settings.p, settings.tolerance,
                                   len(last), what=f"calibrated {rows.label}")
        store = ResultsStore(run_dir)
        _kept_calibration(metric, c, len(last))
        with _noting_rows(store, metric, settings.setting(), c, rows.label) as stored:
            for number, info in enumerate(infos, 1):
                stored.current, name = info, Path(info["path"]).name
                reused = last.pop(info["path"], None) if rows.reuses_calibration else None
                m = reused or rows.measurement(load_checkpoint(Path(info["path"])), data, settings)
                found = rows.at_calibrated(m, c, name, calibration)
                if distributed.is_main_process():  # under torchrun every process holds the same result
                    rows.store(store, info, found, settings, metric)
                    stored.add(info)
                log.info("track %s: checkpoint %d of %d (%s) %s; %d left", metric, number, len(infos), name,
                         _reading(rows, found), len(infos) - number)
    return {"measured": len(infos), "cett": c, "calibration": calibration}


def track_inputs(run_dir: str | Path, settings: TrackSettings) -> dict:
    """Input sparsity alone, in ``settings.mode`` (the output rows are left as they are): what a study's
    analysis stage runs on cells tracked before ``input_sparsity`` was set."""
    run_dir = Path(run_dir)
    data = validation_data(run_dir, settings.max_tokens)
    if settings.mode == "pplp":
        return _each_checkpoint(run_dir, ResultsStore(run_dir), data, settings, PROJECTION_INPUTS, None)
    infos = complete(run_dir)
    if not infos:
        return {"measured": 0, "cett": None}
    return _calibrated_rows(PROJECTION_INPUTS, run_dir, infos, data, settings)


def track(run_dir: str | Path, settings: TrackSettings | None = None) -> dict:
    """Measure the run's checkpoints in ``settings.mode``; see the module docstring."""
    run_dir = Path(run_dir)
    if not (run_dir / runs.RUN_INFO).is_file():
        raise DataError(f"{run_dir} is not a sparsinglaw training run (no {runs.RUN_INFO})")
    settings = settings or TrackSettings()
    _check_distributed(settings)
    if settings.mode == "pplp":
        return track_pplp(run_dir, settings)
    if distributed.world()[1] > 1:  # torchrun: the processes share one calibrated pass (a run-wide claim would deadlock them)
        return track_calibrated(run_dir, settings)

    return track_calibrated_once(run_dir, settings, track_calibrated, complete)


def _check_distributed(settings: TrackSettings) -> None:
    """Several processes (torchrun) share the calibrated mode's passes: every one takes the same decisions from
    all-reduced sums. PPL-p% per checkpoint claims checkpoints in the store one process at a time, and input
    sparsity is not sharded: those run in one process."""
    if distributed.world()[1] > 1 and (settings.mode != "cett-calibrated" or settings.input_sparsity):
        raise SparsingLawError("track under torchrun runs --mode cett-calibrated without --input-sparsity; run "
                               "the other modes in one process (they can run beside each other on one run)")


def checkpoint_hook(run_dir: str | Path, settings: TrackSettings | None = None):
    """A ``train(..., hooks=[...])`` callable measuring PPL-p% at each new checkpoint during training."""
    settings = settings or TrackSettings(mode="pplp")

    def hook(path: Path, info: dict) -> None:
        track_pplp(Path(run_dir), settings)

    return hook


__all__ = ["FFNNeuronRows", "TrackSettings", "calibrate", "checkpoint_hook", "track", "track_calibrated",
           "track_inputs", "track_pplp"]
