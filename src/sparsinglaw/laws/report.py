"""Plain-text tables for fits, predictions, back-tests and scale comparisons (stdout of the CLI)."""

from __future__ import annotations

import numpy as np

from sparsinglaw.guardrails import fit_warnings, unreliable_params
from sparsinglaw.laws.predict import Backtest, Prediction, Reach
from sparsinglaw.laws.results import FitReport, FitResult
from sparsinglaw.laws.scale import ScaleComparison
from sparsinglaw.laws.widthdepth import HingeFit, LossRange


def _g(x: float | None, fmt: str = ".4g") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, fmt)


def _interval(res: FitResult, name: str) -> str:
    iv = res.intervals.get(name)
    return "" if iv is None else f" [{_g(iv.low)}, {_g(iv.high)}]"


def _param_text(res: FitResult) -> str:
    """Each parameter with its interval; one at a fitting bound or outside its own interval is flagged
    instead of printed, since the data do not determine it (a value like 1.6e-23 there is not a finding)."""
    flags = unreliable_params(res)
    return ", ".join(f"{k}=({flags[k]}, not determined)" if k in flags else f"{k}={_g(v)}{_interval(res, k)}"
                     for k, v in res.params.items())


def fit_table(report: FitReport) -> str:
    """One line per law, best-ranked first; the paper's form (when the activation is known) is starred."""
    head = f"{'law':<9} {'MAE':>9} {'MSE':>9} {'AIC':>8} {'BIC':>8}  limit A0 ({report.rank_by} ranking)"
    lines = [f"== {report.curve}", head]
    for res in report.results:
        star = "*" if res.law == report.preferred else " "
        limit = res.limit.describe() if res.limit else "-"
        lines.append(f"{res.law + star:<9} {res.mae:9.3e} {res.mse:9.3e} {res.aic:8.1f} {res.bic:8.1f}  {limit}")
    for res in report.results:
        lines.append(f"  {res.law}: {_param_text(res)}  ({res.n_points} points"
                     f"{f', {res.n_skipped} warmup points skipped' if res.n_skipped else ''})")
        lines.extend(f"    warning: {w}" for w in fit_warnings(res))
    for name, why in report.failures.items():
        lines.append(f"  {name}: FAILED: {why}")
    if report.preferred:
        lines.append("  * paper's law for this activation (docs/paper.md section 3)")
    return "\n".join(lines)


def prediction_lines(law: str, preds: list[Prediction], reaches: list[Reach]) -> str:
    out = []
    for p in preds:
        band = f" [{_g(p.low)}, {_g(p.high)}]" if p.low is not None else ""
        out.append(f"  {law}: A({p.tokens:.4g} tokens) = {p.value:.4g}{band}")
    for r in reaches:
        note = "" if r.identified else " (limit not identified: indicative only)"
        if r.tokens is None:
            out.append(f"  {law}: never within {r.distance:g} of A0 in the search range{note}")
            continue
        band = f" [{_g(r.low)}, {_g(r.high)}]" if r.low is not None else ""
        out.append(f"  {law}: within {r.distance:g} of A0 after {r.tokens:.4g} tokens{band}{note}")
    return "\n".join(out)


def backtest_line(bt: Backtest) -> str:
    return (f"  back-test {bt.law}: fit on {bt.train_points} points (train MAE {bt.train_mae:.3e}), "
            f"test on {bt.test_points}: MAE {bt.test_mae:.3e}, max error {bt.test_max_error:.3e}; "
            f"last point {bt.final_actual:.4f} predicted {bt.final_predicted:.4f}")


def scale_table(cmp: ScaleComparison) -> str:
    tpp = "  ".join(f"{t:>9.3g}" for t in cmp.tokens_per_param)
    lines = ["== scale: limit A0 and dA/dD (per billion tokens) at tokens per parameter",
             f"{'curve':<12} {'N':>9} {'A0':>8} {'interval':>19}  {tpp}"]
    for r in cmp.rows:
        lim = _g(r.limit, ".4f") if r.identified else "n.i."
        iv = f"[{_g(r.low, '.4f')}, {_g(r.high, '.4f')}]" if r.low is not None else "-"
        slopes = "  ".join(f"{_g(s, '9.2e'):>9}" for s in r.slope)
        lines.append(f"{r.curve:<12} {r.n_params:9.3g} {lim:>8} {iv:>19}  {slopes}")
    lines.append(f"spread of identified A0: {_g(cmp.spread, '.4f')}  (n.i. = limit not identified)")
    return "\n".join(lines)


def widthdepth_lines(hinge: HingeFit | None, loss: LossRange | None) -> str:
    out = []
    if hinge:
        iv = f" [{_g(hinge.low)}, {_g(hinge.high)}] ({round(100 * hinge.level)}%)" if hinge.low is not None else ""
        out.append(f"bottleneck r_b = {hinge.bottleneck:.4g}{iv}; plateau A0 = {hinge.plateau:.4g}, "
                   f"slope below = {hinge.slope:.3g} per unit r, MAE {hinge.mae:.3g} ({hinge.n_points} points)")
    if loss:
        out.append(f"loss-optimal r in [{loss.low:.4g}, {loss.high:.4g}] (loss within {100 * loss.tolerance:g}% "
                   f"of {loss.best_loss:.4g} at r = {loss.best_ratio:.4g}); advice: r = {loss.recommended:.4g}")
    return "\n".join(out)
