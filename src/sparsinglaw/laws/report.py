"""Plain-text tables for fits, predictions, back-tests and scale comparisons (stdout of the CLI)."""

from __future__ import annotations

import numpy as np

from sparsinglaw.guardrails import fit_warnings, unreliable_params
from sparsinglaw.laws.predict import Backtest, Prediction, Reach
from sparsinglaw.laws.results import FitReport, FitResult
from sparsinglaw.laws.scale import ScaleComparison
from sparsinglaw.laws.widthdepth import HingeFit, LossRange
from sparsinglaw.tables import aligned_table, format_estimate


def _g(x: float | None, fmt: str = ".4g") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, fmt)


def _param_text(res: FitResult) -> str:
    """Each parameter rounded to its interval's precision with the interval beside it; one at a fitting bound
    or outside its own interval is flagged instead of printed, since the data do not determine it (a value
    like 1.6e-23 there is not a finding)."""
    flags = unreliable_params(res)

    def text(name: str, value: float) -> str:
        if name in flags:
            return f"{name}=({flags[name]}, not determined)"
        iv = res.intervals.get(name)
        return f"{name}=" + " ".join(format_estimate(value, iv and (iv.low, iv.high), missing="")).rstrip()

    return ", ".join(text(k, v) for k, v in res.params.items())


def fit_table(report: FitReport) -> str:
    """One row per law, best-ranked first (the paper's form, when the activation is known, starred), then
    each law's parameters with their intervals. MAE, MSE, AIC and BIC describe the fit (no interval)."""
    body = [[res.law + ("*" if res.law == report.preferred else ""), f"{res.mae:.3e}", f"{res.mse:.3e}",
             f"{res.aic:.1f}", f"{res.bic:.1f}", res.limit.describe() if res.limit else "-"] for res in report.results]
    lines = [f"== {report.curve}", aligned_table(["law", "MAE", "MSE", "AIC", "BIC",
                                                 f"limit A0 ({report.rank_by} ranking)"], body, align="lrrrrl")]
    for res in report.results:
        no_iv = "" if res.intervals else "; no intervals computed"
        lines.append(f"  {res.law}: {_param_text(res)}  ({res.n_points} points"
                     f"{f', {res.n_skipped} warmup points skipped' if res.n_skipped else ''}{no_iv})")
        lines.extend(f"    warning: {w}" for w in fit_warnings(res))
    for name, why in report.failures.items():
        lines.append(f"  {name}: FAILED: {why}")
    if report.preferred:
        lines.append("  * paper's law for this activation (docs/paper.md section 3)")
    return "\n".join(lines)


def _tokens(x: float | None) -> str:
    """A token count read on a log scale (its interval spans orders of magnitude): two significant digits."""
    return _g(x, ".2g")


def prediction_lines(law: str, preds: list[Prediction], reaches: list[Reach]) -> str:
    out = []
    for p in preds:
        value, band = format_estimate(p.value, (p.low, p.high) if p.low is not None else None,
                                      missing="(no interval computed)")
        out.append(f"  {law}: A({p.tokens:.4g} tokens) = {value} {band}")
    for r in reaches:
        note = "" if r.identified else " (limit not identified: indicative only)"
        if r.tokens is None:
            out.append(f"  {law}: never within {r.distance:g} of A0 in the search range{note}")
            continue
        band = f" [{_tokens(r.low)}, {_tokens(r.high)}]" if r.low is not None else " (no interval computed)"
        out.append(f"  {law}: within {r.distance:g} of A0 after {_tokens(r.tokens)} tokens{band}{note}")
    return "\n".join(out)


def backtest_line(bt: Backtest) -> str:
    return (f"  back-test {bt.law}: fit on {bt.train_points} points (train MAE {bt.train_mae:.3e}), "
            f"test on {bt.test_points}: MAE {bt.test_mae:.3e}, max error {bt.test_max_error:.3e}; "
            f"last point {bt.final_actual:.4f} predicted {bt.final_predicted:.4f} (one split: no interval)")


def scale_table(cmp: ScaleComparison) -> str:
    """A0 rounded to its interval with the interval beside it, then dA/dD at each tokens-per-parameter (the
    fitted law's slope: no interval)."""
    body = []
    for r in cmp.rows:
        limit, interval = format_estimate(r.limit, (r.low, r.high) if r.low is not None else None)
        body.append([r.curve, f"{r.n_params:.3g}", limit if r.identified else "n.i.", interval,
                     *(_g(s, ".2e") for s in r.slope)])
    header = ["curve", "N", "A0", "interval", *(f"{t:.3g}" for t in cmp.tokens_per_param)]
    return "\n".join(["== scale: limit A0 and dA/dD (per billion tokens) at tokens per parameter",
                      aligned_table(header, body),
                      f"spread of identified A0: {_g(cmp.spread, '.4f')}  (n.i. = limit not identified; "
                      "dA/dD from the fitted law: no interval)"])


def widthdepth_lines(hinge: HingeFit | None, loss: LossRange | None) -> str:
    out = []
    if hinge:
        interval = (hinge.low, hinge.high) if hinge.low is not None else None
        bottleneck, band = format_estimate(hinge.bottleneck, interval, missing="(no interval computed)")
        level = f" ({round(100 * hinge.level)}%)" if interval else ""
        out.append(f"bottleneck r_b = {bottleneck} {band}{level}; plateau A0 = {hinge.plateau:.4g}, "
                   f"slope below = {hinge.slope:.3g} per unit r (plateau and slope: no interval), "
                   f"MAE {hinge.mae:.3g} ({hinge.n_points} points)")
    if loss:
        out.append(f"loss-optimal r in [{loss.low:.4g}, {loss.high:.4g}] (loss within {100 * loss.tolerance:g}% "
                   f"of {loss.best_loss:.4g} at r = {loss.best_ratio:.4g}); advice: r = {loss.recommended:.4g}")
    return "\n".join(out)
