"""Read what a study (or a single training run) measured: one ``CellData`` per run directory.

A study directory holds ``study.toml`` and ``cells/NAME/``; a run directory holds ``run.toml`` and
``results.sqlite``. Values come from each run's results store, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from sparsinglaw.config import toml_string
from sparsinglaw.errors import DataError
from sparsinglaw.store import runs
from sparsinglaw.store.database import FILENAME, ResultsStore
from sparsinglaw.store.layout import STUDY_FILE
from sparsinglaw.store.runs import read_data_meta
from sparsinglaw.study.config import load_study
from sparsinglaw.train.config import load_config
from sparsinglaw.train.shapes import resolve_shape


@dataclass
class CellData:
    name: str
    activation: str
    run_dir: Path
    hidden_size: int
    num_layers: int
    n_params: float  # non-embedding parameters by the paper's formula
    tokens_budget: int
    points: list[tuple[int, float]] = field(default_factory=list)  # (tokens, tracked activation ratio)
    intervals: dict[int, tuple[float, float]] = field(default_factory=dict)  # tokens -> its interval, if recorded
    interval_level: float | None = None
    metric: str = "pplp"  # the tracking mode the points come from (results-store metric)
    epochs: float | None = None  # passes over the training text (RUN_DIR/data/meta.json)
    dead: list[tuple[int, float]] = field(default_factory=list)  # (tokens, dead-neuron ratio)
    dead_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)  # tokens -> its interval
    live: list[tuple[int, float]] = field(default_factory=list)  # (tokens, activation ratio over live neurons)
    live_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    never_active: list[tuple[int, float]] = field(default_factory=list)  # (tokens, share never active, dense)
    decay_start: float | None = None  # tokens where the learning rate starts to decay (WSD schedule)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (tokens, eval loss, else train loss)
    setting: dict = field(default_factory=dict)
    budget: float = 0.0  # the configured parameter budget (cells of one budget form a width-depth group)
    target_ratio: float = 0.0  # the configured width-depth ratio (cells of one ratio form a scale group)
    # Input sparsity where it was tracked (``track --input-sparsity``): the kept share of projection inputs
    # and the weight bytes ratio per checkpoint, each with its interval where recorded.
    input_metric: str | None = None
    input_points: list[tuple[int, float]] = field(default_factory=list)
    input_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    input_interval_level: float | None = None
    input_bytes: list[tuple[int, float]] = field(default_factory=list)
    input_bytes_intervals: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.hidden_size / self.num_layers

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    def input_cell(self) -> CellData:
        """This model with its input kept shares as the tracked points, so that the same fits and checks
        apply to input sparsity (no dead neurons: those are the FFN's)."""
        return replace(self, points=list(self.input_points), intervals=dict(self.input_intervals),
                       interval_level=self.input_interval_level, metric=self.input_metric or "", dead=[],
                       dead_intervals={}, live=[], live_intervals={}, never_active=[], input_points=[],
                       input_intervals={})


def is_study(path: Path) -> bool:
    return (Path(path) / STUDY_FILE).is_file()


def _tracked_rows(store, metric: str | None) -> tuple[str, list[dict]]:
    """Rows of ``metric`` (the study's tracking mode), else of whichever mode the run was tracked in."""
    order = [metric] if metric else []
    order += [m for m in ("cett-calibrated", "pplp") if m not in order]
    for name in order:
        rows = [r for r in store.measurements(metric=name, with_result=True) if r["activation_ratio"] is not None]
        if rows:
            return name, rows
    return order[0], []


def _pair(value) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if isinstance(value, list | tuple) and len(value) == 2 else None


def read_inputs(store, cell: CellData) -> None:
    """The input-sparsity rows tracked in the output metric's mode and setting (else in the other mode)."""
    order = [f"input-{cell.metric}"] + [f"input-{m}" for m in ("cett-calibrated", "pplp") if m != cell.metric]
    for metric in order:
        rows = [r for r in store.measurements(metric=metric, with_result=True) if r["activation_ratio"] is not None]
        if cell.setting:
            rows = [r for r in rows if r["setting"] == cell.setting] or rows
        if rows:
            break
    else:
        return
    keep = str(rows[-1]["setting"])
    rows = [r for r in rows if str(r["setting"]) == keep]
    cell.input_metric = metric
    cell.input_points = [(r["tokens"], r["activation_ratio"]) for r in rows]
    for r in rows:
        iv = (r["result"] or {}).get("interval") or {}
        if (kept := _pair(iv.get("kept_share"))) is not None:
            cell.input_intervals[r["tokens"]] = kept
            cell.input_interval_level = float(iv.get("level", 0.9))
        if (used := _pair(iv.get("bytes_ratio"))) is not None:
            cell.input_bytes_intervals[r["tokens"]] = used
    cell.input_bytes = [(r["tokens"], r["result"]["bytes_ratio"]) for r in rows if r["result"]]


def read_population(rows: list[dict], cell: CellData) -> None:
    """Dead-neuron ratio, live-neuron activation ratio and never-active share per checkpoint, with the
    intervals where tracking recorded them (rows tracked before these existed have the dead ratio only)."""
    for r in rows:
        result, t = r["result"] or {}, r["tokens"]
        if not result:
            continue
        cell.dead.append((t, result["dead_neuron_ratio"]))
        if result.get("live_activation_ratio") is not None:
            cell.live.append((t, result["live_activation_ratio"]))
        if result.get("never_active_ratio") is not None:
            cell.never_active.append((t, result["never_active_ratio"]))
        iv = result.get("interval") or {}
        if (dead := _pair(iv.get("dead_neuron_ratio"))) is not None:
            cell.dead_intervals[t] = dead
        if (live := _pair(iv.get("live_activation_ratio"))) is not None:
            cell.live_intervals[t] = live


def read_run(run_dir: Path, name: str | None = None, metric: str | None = None) -> CellData:
    run_dir = Path(run_dir)
    if not (run_dir / runs.RUN_CONFIG).is_file() or not (run_dir / FILENAME).is_file():
        raise DataError(f"{run_dir} is neither a study directory nor a measured training run "
                        f"(no {runs.RUN_CONFIG} and {FILENAME})")
    cfg = load_config(run_dir / runs.RUN_CONFIG)
    shape = resolve_shape(cfg.model)
    cell = CellData(name or run_dir.name, cfg.model.activation, run_dir, shape.hidden_size, shape.num_layers,
                    float(shape.formula_params()), cfg.token_budget)
    cell.budget = float(cfg.model.n_params or cell.n_params)
    cell.target_ratio = float(cfg.model.ratio or cell.ratio)
    store = ResultsStore(run_dir)
    cell.metric, rows = _tracked_rows(store, metric)
    settings = {str(r["setting"]) for r in rows}
    if len(settings) > 1:  # several p values tracked: keep the most common one
        keep = max(settings, key=lambda s: sum(str(r["setting"]) == s for r in rows))
        rows = [r for r in rows if str(r["setting"]) == keep]
    cell.setting = rows[0]["setting"] if rows else {}
    cell.points = [(r["tokens"], r["activation_ratio"]) for r in rows]
    read_population(rows, cell)
    for r in rows:
        iv = (r["result"] or {}).get("interval") or {}
        if isinstance(iv.get("activation_ratio"), list | tuple) and len(iv["activation_ratio"]) == 2:
            cell.intervals[r["tokens"]] = (float(iv["activation_ratio"][0]), float(iv["activation_ratio"][1]))
            cell.interval_level = float(iv.get("level", 0.9))
    cell.decay_start = cfg.token_budget * (1 - cfg.optim.decay_fraction) if cfg.optim.decay_fraction > 0 else None
    read_inputs(store, cell)

    cell.epochs = read_data_meta(run_dir).get("epochs")
    cell.losses = validation_losses(store, rows)
    return cell


def validation_losses(store, tracked: list[dict]) -> list[tuple[int, float]]:
    """(tokens, loss) per checkpoint: the trainer's eval_loss where it computed one, else the mean
    validation NLL of tracking's dense pass; the training loss only when no checkpoint has a validation loss."""
    losses = {r["tokens"]: math.log(r["result"]["dense_ppl"]) for r in tracked if (r["result"] or {}).get("dense_ppl")}
    losses.update((r["tokens"], r["value"]) for r in store.measurements(metric="eval_loss") if r["value"] is not None)
    if losses:
        return sorted(losses.items())
    return [(r["tokens"], r["value"]) for r in store.measurements(metric="train_loss") if r["value"] is not None]


def collect(path: str | Path) -> tuple[list[CellData], dict]:
    """Cells of a study directory (in grid order) or the single run at ``path``; plus the study settings."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a directory (give a study or training run directory)")
    if not is_study(path):
        return [read_run(path)], {"name": path.name, "kind": "run"}
    cfg = load_study_dir(path)
    cells = []
    for cell in cfg.cells():
        if cell.run_dir.is_dir() and (cell.run_dir / "results.sqlite").is_file():
            cells.append(read_run(cell.run_dir, cell.name, cfg.track.metric))
    if not cells:
        raise DataError(f"{path}: no cell has been trained and measured yet; run `sparsinglaw study` first")
    return cells, {"name": cfg.name, "kind": "study", "config": cfg}


def load_study_dir(path: Path):
    """The study config saved in ``path``, with ``out_dir`` set to ``path`` (the directory may have moved
    since it was written). The path goes in as a TOML string: Python's repr would leave a backslash doubled
    (TOML reads '...' literally) and cannot quote every control character."""
    return load_study(Path(path) / STUDY_FILE, [f"out_dir={toml_string(str(path))}"])
