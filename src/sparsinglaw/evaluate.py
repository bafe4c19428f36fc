"""Downstream evaluation of a model dense and under fixed thresholds, with lm-evaluation-harness.

docs/paper.md section 4: the same in-memory model, wrapped once in lm-eval's ``HFLM``, is scored dense and
then under ``apply_thresholds`` (any thresholds kind), whose counters give the activation ratio (or kept
share) of the evaluation itself; lm-eval pads batches, so batch size 1 gives the exact ratio. Each task gets
its own ``simple_evaluate`` call (and ratio); keyword arguments go to ``simple_evaluate``.
``sparse_modules=True`` runs the sparse model on ``sparsinglaw.sparse``'s modules instead of masks (same
scores up to float rounding)::

    report = evaluate_dense_and_sparse(model, tokenizer, Thresholds.load("result.json"), ["piqa"], limit=100)
    print(report.table())

Requires the ``lm-eval`` package."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.capture.passes import model_device
from sparsinglaw.data.mc_task import SHIPPED_TASK, local_task_dir
from sparsinglaw.errors import ConfigError, DataError, ModelError
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.provenance import git_hash
from sparsinglaw.tables import aligned_table, format_with_error
from sparsinglaw.thresholds import Thresholds, ThresholdsKind

log = logging.getLogger("sparsinglaw.evaluate")

# simple_evaluate arguments we set ourselves (the model and the task manager).
_RESERVED = {"model", "model_args", "tasks", "task_manager"}


@dataclass
class ScoreRow:
    """One task metric, dense and sparse."""

    task: str
    metric: str
    dense: float | None
    sparse: float | None
    dense_stderr: float | None = None
    sparse_stderr: float | None = None
    activation_ratio: float | None = None  # of the sparse evaluation this row came from

    @property
    def diff(self) -> float | None:
        if self.dense is None or self.sparse is None:
            return None
        return self.sparse - self.dense

    @property
    def diff_stderr(self) -> float | None:
        """sqrt(se_dense^2 + se_sparse^2): the standard error of the difference as if the two runs were
        independent; both score the same items, so the paired one is smaller (this errs toward 'no change')."""
        if self.dense_stderr is None or self.sparse_stderr is None:
            return None
        return math.hypot(self.dense_stderr, self.sparse_stderr)

    @property
    def within_noise(self) -> bool:
        """The difference is no larger than its standard error: not a measured change."""
        return self.diff is not None and self.diff_stderr is not None and abs(self.diff) <= self.diff_stderr


@dataclass
class EvalReport:
    """Dense vs sparse lm-eval scores and the activation ratio measured while the sparse model ran."""

    model: str
    tasks: list[str]
    rows: list[ScoreRow]
    activation_ratio: float  # over every task's sparse evaluation
    task_activation_ratio: dict[str, float]  # per requested task (or group)
    layer_activation_ratio: list[float]
    thresholds: dict[str, Any]  # model identity, metric and calibration of the thresholds used
    lm_eval_args: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # {"dense": {...}, "sparse": {...}} results

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row, out in zip(self.rows, data["rows"]):
            out["diff"], out["diff_stderr"], out["within_noise"] = row.diff, row.diff_stderr, row.within_noise
        return data

    def table(self) -> str:
        """Side-by-side text table: task, metric, dense and sparse each rounded to lm-eval's standard error with
        it beside, the difference with its standard error (marked ``~`` where it is within it), activation ratio
        (one count over the evaluation: no interval)."""
        header = ["task", "metric", "dense", "± se", "sparse", "± se", "diff", "± se", "", "act. ratio"]
        body = [[row.task, row.metric, *format_with_error(row.dense, row.dense_stderr),
                 *format_with_error(row.sparse, row.sparse_stderr),
                 *format_with_error(row.diff, row.diff_stderr, signed=True),
                 "~" if row.within_noise else "", _fmt(row.activation_ratio)] for row in self.rows]
        lines = [aligned_table(header, body, left=2)]
        metric = self.thresholds.get("metric", {})
        share = self.thresholds.get("kept", "activation ratio")  # ``ThresholdsKind.kept_quantity``
        lines.append(
            f"sparse {share} over the evaluation: {self.activation_ratio:.4f} (one count over every evaluated token: "
            f"no interval; thresholds: {metric.get('name')} {metric.get('setting')}, calibrated activation ratio "
            f"{_fmt(metric.get('activation_ratio'))})"
        )
        if any("-" in (cells[3], cells[5]) for cells in body):
            lines.append("- in a ± se column: lm-eval gave no standard error (bootstrap_iters=0 or a metric without one)")
        if any(row.within_noise for row in self.rows):
            lines.append("~ the difference is within its standard error (sqrt(se_dense^2 + se_sparse^2)): "
                         "not a measured change; more items (--limit) narrow it")
        return "\n".join(lines)

    def noise_warnings(self) -> list[str]:
        """One line per row whose difference is within its standard error."""
        return [f"{row.task} {row.metric}: the difference {' '.join(format_with_error(row.diff, row.diff_stderr, signed=True))}"
                " is within its standard error, so it is not a measured change" for row in self.rows if row.within_noise]


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError as err:
        raise ConfigError("downstream evaluation needs lm-eval: pip install lm-eval==0.4.13") from err


def task_manager(tasks: list[str], include_path: str | list[str] | None = None):
    """An lm-eval TaskManager that knows ``tasks``; with an include path, the (slow) index of lm-eval's own
    tasks is built only if some task is not found there. ConfigError for unknown task names."""
    from lm_eval.tasks import TaskManager

    if SHIPPED_TASK in tasks:  # the task shipped with the package, found by name (offline)
        paths = [include_path] if isinstance(include_path, str) else list(include_path or [])
        include_path = [*paths, str(local_task_dir())]
    manager = None
    if include_path:
        manager = TaskManager(include_path=include_path, include_defaults=False)
        if any(name not in manager.all_tasks for name in tasks):
            manager = None
    if manager is None:
        manager = TaskManager(include_path=include_path or None)
    missing = [name for name in tasks if name not in manager.all_tasks]
    if missing:
        where = f" or in {include_path}" if include_path else " (pass --include-path for local task YAML)"
        raise ConfigError(f"unknown lm-eval task(s) {', '.join(missing)}: not among lm-eval's tasks{where}")
    return manager


def check_lm_eval_kwargs(kwargs: dict[str, Any]) -> None:
    """ConfigError for keyword arguments ``lm_eval.simple_evaluate`` does not take (or that we set)."""
    import lm_eval

    known = set(inspect.signature(lm_eval.simple_evaluate).parameters) - _RESERVED
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"unknown lm-eval argument(s) {', '.join(unknown)}; simple_evaluate takes {', '.join(sorted(known))}")


def make_lm(model, tokenizer, batch_size: int | str = 1, **hflm_kwargs):
    """lm-eval's ``HFLM`` around an in-memory model (nothing is loaded or copied)."""
    from lm_eval.models.huggingface import HFLM

    device = str(model_device(model))
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, **hflm_kwargs)


def _run(lm, task: str, manager, kwargs: dict[str, Any], cache_suffix: str) -> dict[str, Any]:
    import lm_eval

    kwargs = dict(kwargs)
    if kwargs.get("use_cache"):
        kwargs["use_cache"] = f"{kwargs['use_cache']}_{cache_suffix}"  # never serve dense answers to sparse
    try:
        with _quiet_git_hash(), retries_logged_once():
            result = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=manager, **kwargs)
    except ConnectionError as err:  # datasets' "Couldn't reach 'x' on the Hub", requests' errors
        raise DataError(
            f"lm-eval task {task} needs its dataset from the Hugging Face hub, which cannot be reached "
            f"({str(err).splitlines()[0][:160]}); run it once where the hub is reachable so the dataset is "
            "cached, or pass --include-path with a task on local files"
        ) from None
    if result is None:  # pragma: no cover - non-zero rank
        raise ConfigError("lm-eval returned no results (not rank 0?)")
    return result


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def score_rows(dense: dict[str, Any], sparse: dict[str, Any]) -> list[ScoreRow]:
    """Rows for every numeric metric in lm-eval's ``results`` (and groups), paired by task and metric."""
    rows = []
    for section in ("results", "groups"):
        for task, metrics in dense.get(section, {}).items():
            if section == "groups" and task in dense.get("results", {}):
                continue
            other = sparse.get(section, {}).get(task, {})
            for key, value in metrics.items():
                if "," not in key or "_stderr" in key or _number(value) is None:
                    continue
                name, filt = key.split(",", 1)
                stderr_key = f"{name}_stderr,{filt}"
                rows.append(ScoreRow(
                    task=task, metric=name if filt == "none" else key, dense=_number(value), sparse=_number(other.get(key)),
                    dense_stderr=_number(metrics.get(stderr_key)), sparse_stderr=_number(other.get(stderr_key)),
                ))
    return rows


@contextmanager
def retries_logged_once(logger_name: str = "huggingface_hub.utils._http"):
    """While the hub is unreachable, huggingface_hub logs every failed attempt and every backoff ("'...'
    thrown while requesting", "Retrying in 1s [Retry 1/5]", ...): keep the first such line and one
    note that the others are not shown."""
    class Once(logging.Filter):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def filter(self, record: logging.LogRecord) -> bool:
            text = record.getMessage()
            if not any(key in text for key in ("thrown while requesting", "Retry", "HTTP Error")):
                return True
            self.seen += 1
            if self.seen == 1:
                record.msg, record.args = f"{text} (further retries of the hub are not logged)", None
            return self.seen == 1

    target, once = logging.getLogger(logger_name), Once()
    target.addFilter(once)
    try:
        yield once
    finally:
        target.removeFilter(once)


@contextlib.contextmanager
def _quiet_git_hash():
    """lm-eval stamps results with ``git describe`` run without capturing stderr, which prints ``fatal: not a
    git repository`` outside a checkout; use the same lookup with its stderr captured instead."""
    import lm_eval.evaluator as evaluator

    original = getattr(evaluator, "get_git_commit_hash", None)
    if original is None:  # another lm-eval layout: nothing to replace
        yield
        return
    evaluator.get_git_commit_hash = lambda: git_hash(Path.cwd())
    try:
        yield
    finally:
        evaluator.get_git_commit_hash = original


def evaluate_dense_and_sparse(model, tokenizer, thresholds: ThresholdsKind | list[float], tasks: list[str] | str, *,
                              include_path: str | list[str] | None = None, batch_size: int | str = 1,
                              hflm_kwargs: dict[str, Any] | None = None, model_name: str | None = None,
                              sparse_modules: bool = False, **lm_eval_kwargs) -> EvalReport:
    """Evaluate ``model`` on lm-eval ``tasks`` dense and with ``thresholds`` applied (same harness, same
    settings); no hook stays attached afterwards. ``lm_eval_kwargs`` go to ``lm_eval.simple_evaluate``;
    ``sparse_modules`` computes the thresholded model with the kind's sparse modules instead of masks."""
    _require_lm_eval()
    tasks = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    if not tasks or not all(tasks):
        raise ConfigError("no lm-eval tasks given; pass e.g. --tasks piqa,hellaswag")
    _check_thresholds(model, thresholds)  # refuse before any (slow) evaluation
    check_lm_eval_kwargs(lm_eval_kwargs)
    lm_eval_kwargs.setdefault("log_samples", False)
    manager = task_manager(tasks, include_path)
    lm = make_lm(model, tokenizer, batch_size=batch_size, **(hflm_kwargs or {}))
    dense: dict[str, Any] = {"results": {}, "groups": {}}
    sparse: dict[str, Any] = {"results": {}, "groups": {}}
    ratios: dict[str, float] = {}
    owner: dict[str, str] = {}  # lm-eval task or group name -> the requested task whose run produced it
    active = total = 0.0
    for task in tasks:
        _merge(dense, _run(lm, task, manager, lm_eval_kwargs, "dense"))
        with _thresholded(model, thresholds, sparse_modules) as stats:
            result = _run(lm, task, manager, lm_eval_kwargs, f"sparse_{_fingerprint(thresholds)}")
        _merge(sparse, result)
        owner.update({name: task for section in ("results", "groups") for name in result.get(section, {})})
        ratios[task] = stats.activation_ratio
        active, total = active + stats.active, total + stats.total
    rows = score_rows(dense, sparse)
    for row in rows:
        row.activation_ratio = ratios.get(owner.get(row.task, row.task))
    return EvalReport(
        model=model_name or str(getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__)),
        tasks=tasks, rows=rows,
        activation_ratio=float(active.sum() / total.sum()) if total.sum() > 0 else float("nan"),
        task_activation_ratio=ratios,
        layer_activation_ratio=[float(a / t) if t > 0 else float("nan") for a, t in zip(active, total)],
        thresholds=_describe(thresholds), lm_eval_args={k: v for k, v in lm_eval_kwargs.items() if _jsonable(v)},
        raw={"dense": dense, "sparse": sparse},
    )


@contextmanager
def _thresholded(model, thresholds: ThresholdsKind | list[float], sparse_modules: bool):
    """The thresholded model for the sparse run, yielding its activity counters (of the projection inputs
    for input thresholds): masking hooks, or the kind's sparse compute modules."""
    if isinstance(thresholds, list):
        thresholds = Thresholds.for_model(model, thresholds)
    with (thresholds.sparsify(model) if sparse_modules else thresholds.install(model)) as stats:
        yield stats


def _fingerprint(thresholds: ThresholdsKind | list[float]) -> str:
    """Short hash of the threshold values (keeps lm-eval response caches of different thresholds apart)."""
    values = [float(t) for t in thresholds] if isinstance(thresholds, list) else thresholds.values
    return hashlib.sha256(repr(values).encode()).hexdigest()[:12]


def _check_thresholds(model, thresholds: ThresholdsKind | list[float]) -> None:
    if not isinstance(thresholds, list):
        thresholds.check(model)
        return
    layers = find_ffn_layers(model)
    if len(thresholds) != len(layers):
        raise ModelError(f"{len(thresholds)} thresholds for a model with {len(layers)} FFNs")


def _describe(thresholds: ThresholdsKind | list[float]) -> dict[str, Any]:
    """What the report records about the thresholds: their file's entries but the per-layer lists."""
    if isinstance(thresholds, list):
        return {"values": [float(t) for t in thresholds]}
    return thresholds.describe() | {"kept": thresholds.kept_quantity}


def _merge(into: dict[str, Any], result: dict[str, Any]) -> None:
    for key in ("results", "groups", "samples", "n-samples", "versions"):
        if key in result:
            into.setdefault(key, {}).update(result[key])


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
