"""One self-contained HTML report for a study or a training run.

``write_report(PATH)``: the verdicts against the paper with their intervals, the setup, the figures and the
tables, the paper's values beside ours; parameters at a bound are flagged, and a section that cannot apply
says why. It only renders the files the study's analysis stages wrote (``sparsinglaw.store.layout``, read by
``report.data``), and names the command that writes a missing one. Figures are PNG (data as CSV) embedded
as base64; text from data is HTML-escaped."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_text
from sparsinglaw.report import study_figures as sf
from sparsinglaw.report.data import StudyData, load
from sparsinglaw.report.inputs import input_figures, inputs_html
from sparsinglaw.report.markup import STYLE, _one_line, at_bound, check_rows, esc, fmt, table  # noqa: F401  (re-exported)
from sparsinglaw.store.artifacts import ComparisonDocument
from sparsinglaw.store.layout import ANALYSIS, REPORT_DIR


def figure_html(fig: sf.Figure) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{esc(fig.name)}"><h3>{esc(fig.title)}</h3>'
            f'<img alt="{esc(fig.title)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{esc(fig.caption)} Files: {esc(fig.png.name)}, {esc(fig.csv.name)}.</figcaption></figure>')


def _interval(fit, name: str) -> tuple[Any, Any]:
    iv = fit.intervals.get(name)
    return (iv.low, iv.high) if iv is not None else (None, None)


def _published(data: StudyData, law: str, name: str) -> float | None:
    """The paper's 0.1B value of a parameter of the ReLU or SiLU law (docs/paper.md section 3)."""
    return data.paper.published_value(law, name)


def coefficient_rows(data: StudyData) -> list[list[Any]]:
    """One row per fitted parameter, with the paper's 0.1B value beside it; parameters at a bound are
    flagged instead of printed (their values are the optimizer's, not the data's)."""
    rows = []
    for cell in data.cells:
        fit = data.fits.get(cell.name)
        if fit is None:
            rows.append([cell.name, "–", "not fitted", None, None, None, None, data.failures.get(cell.name, "")])
            continue
        for name, value in fit.params.items():
            iv, paper = fit.intervals.get(name), _published(data, fit.law, name)
            if at_bound(value, iv):
                rows.append([cell.name, fit.law, name, None, None, None, paper,
                             "at a bound: not identified by these points"])
                continue
            lo, hi = _interval(fit, name)
            rows.append([cell.name, fit.law, name, value, lo, hi, paper, ""])
        rows.append([cell.name, fit.law, "MAE", fit.mae, None, None,
                     data.paper.published_mae.get(f"0.1b_{fit.law}"),
                     f"{fit.n_points} points, {fit.n_skipped} skipped"])
        if fit.limit is not None:
            iv = fit.limit.interval
            ok = fit.limit.identified and not at_bound(fit.limit.value, iv)
            rows.append([cell.name, fit.law, "limit A0", fit.limit.value if ok else None,
                         iv.low if iv and ok else None, iv.high if iv and ok else None, _published(data, fit.law, "A0"),
                         fit.limit.text if ok or not fit.limit.identified else "at a bound: not identified"])
    return rows


def tables_html(data: StudyData) -> str:
    lvl = f"{data.level:.0%}"
    parts = ["<h2>Models</h2>", table("cells", ["cell", "activation", "d", "L", "r = d/L", "N (non-embedding)",
                                                "checkpoints measured", "final activation ratio", "final loss"],
             [[c.name, c.activation, c.hidden_size, c.num_layers, c.ratio, c.n_params, len(c.points),
               c.points[-1][1] if c.points else None, c.final_loss] for c in data.cells])]
    parts += [f"<h2>Fitted coefficients ({lvl} bootstrap intervals)</h2>",
              table("coefficients", ["cell", "law", "parameter", "value", "low", "high", "paper (0.1B)", "note"],
                    coefficient_rows(data))]
    parts.append("<h2>Width-depth ratio</h2>")
    if not data.widthdepth:
        parts.append(_one_line("Not applicable: needs models of one size at two or more width-depth ratios."))
    wd = [[g["activation"], r["cell"], r["ratio"], r["limit"], r["low"], r["high"], r["final_loss"]]
          for g in data.widthdepth for r in g["rows"]]
    if wd:
        parts.append(table("widthdepth", ["activation", "cell", "r", "A0", "low", "high", "final loss"], wd))
    for g in data.widthdepth:
        if g["hinge"]:
            h = g["hinge"]
            parts.append(table("hinge", ["activation", "bottleneck r", "low", "high", "plateau", "slope"],
                               [[g["activation"], h["bottleneck"], h["low"], h["high"], h["plateau"], h["slope"]]]))
        if g["loss_range"]:
            lr = g["loss_range"]
            parts.append(table("lossrange", ["activation", "loss-optimal r from", "to", "best r", "advised r"],
                               [[g["activation"], lr["low"], lr["high"], lr["best_ratio"], lr["recommended"]]]))
    parts.append("<h2>Scale</h2>")
    sc = [[g["activation"], m["curve"], m["n_params"], m["limit"], m["low"], m["high"]]
          for g in data.scale for m in g["models"]]
    parts.append(table("scale", ["activation", "cell", "N", "A0", "low", "high"], sc) if sc else
                 _one_line("Not applicable: needs models of two or more sizes at a similar width-depth ratio."))
    parts += ["<h2>Every tracked measurement</h2>",
              table("measurements", ["cell", "tokens", "activation ratio", "low", "high", "dead-neuron ratio",
                                     "live-neuron ratio", "never active"],
                    [[c.name, t, a, *c.intervals.get(t, (None, None)), dict(c.dead).get(t), dict(c.live).get(t),
                      dict(c.never_active).get(t)] for c in data.cells for t, a in c.points])]
    return "".join(parts)


def _interval_text(cell) -> str:
    iv = cell.intervals.get(cell.points[-1][0]) if cell.points else None
    return f"[{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "–"


def setup_facts(data: StudyData) -> list[str]:
    """One sentence each: training text and tracking, the metric comparison, wall time, the paper's curves."""
    facts, track, pretrained = [], data.setup.track, data.pretrained
    if track is not None:
        mode = (f"one CETT calibrated on the last {track['calibrate_last']} checkpoints (PPL-{track['p']:g}% on "
                "their mean), per-layer thresholds recomputed per checkpoint" if track["mode"] == "cett-calibrated"
                else f"PPL-{track['p']:g}% solved per checkpoint")
        facts.append(f"Training text: {data.setup.data_source or 'builtin'}. Tracking: {mode}, on "
                     f"{track['max_tokens']:,} validation tokens (documents never trained on).")
    if pretrained:
        facts.append(f"Metric comparison: {pretrained['model']} on {pretrained['tokens']:,} tokens.")
    if data.timings:
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in data.timings.get("stages", {}).items())
        overlap = " (cells ran side by side: their train and track seconds are summed over processes)" \
            if "cells in parallel (wall)" in data.timings.get("stages", {}) else ""
        facts.append(f"Wall time to the report: {data.timings['wall']:.0f} s ({stages}){overlap}.")
    curves = data.paper.curves
    facts.append(f"The paper's curves: {len(curves)} published models shown beside ours." if curves else
                 "The paper's curves are not available here, so they are not shown.")
    return facts


def setup_html(data: StudyData) -> str:
    """The study at a glance: models, parameters, tokens, evaluation tokens, wall time."""
    rows = [[c.name, c.activation, f"{c.hidden_size} x {c.num_layers}", c.n_params, c.tokens_budget,
             c.epochs, len(c.points), c.points[-1][1] if c.points else None, _interval_text(c)]
            for c in data.cells]
    parts = ["<h2>Setup</h2>", table("setup", ["model", "activation", "d x L", "N (non-embedding)", "training tokens",
                                                "epochs of the corpus", "checkpoints", "final activation ratio",
                                                "its interval"], rows)]
    return "".join(parts) + "".join(f"<p>{esc(f)}</p>" for f in setup_facts(data))


# The two tables of verdicts: the trends the budget resolves, then the findings resting on the law's limit.
CHECK_TABLES = (("trend", "paper", "Trends at the trained budget"),
                ("limit", "paper-limits", "Findings on the limit (need the law's limit identified)"))


def comparison_html(comparison: ComparisonDocument) -> str:
    head = "<thead><tr><th>check</th><th>paper</th><th>found</th><th>verdict</th></tr></thead>"
    tables = []
    for kind, table_id, title in CHECK_TABLES:
        checks = comparison.checks_of_kind(kind)
        if checks or kind == "trend":
            caption = f"<h3>{title}</h3>" if any(c.kind for c in comparison.checks) else ""
            tables.append(f'{caption}<table id="{table_id}">{head}<tbody>{check_rows(checks)}</tbody></table>')
    return (f'<h2>Agreement with the paper</h2><p class="summary" id="verdict">{esc(comparison.summary)}</p>'
            + "".join(tables))


def output_figures(data: StudyData, out: Path) -> list[sf.Figure]:
    """The FFN-neuron target's figures (and the metric comparison and the paper's curves they lead with)."""
    probes, pretrained = data.probes, data.pretrained
    figs = [sf.pretrained_figure(pretrained, out)] if pretrained else []
    if not pretrained and probes.pareto:  # no pretrained model: the comparison on a cell instead
        pareto = probes.pareto
        figs.append(sf.pareto_figure(pareto["points"], pareto["cell"], pareto["checkpoint"], out))
    figs += [sf.curves_figure(data, out), sf.paper_figure(data.paper.curves, data, out)]
    if data.widthdepth:
        figs.append(sf.widthdepth_figure(data, out))
    if data.scale:
        figs.append(sf.scale_figure(data, out))
    details = probes.details
    figs.append(sf.frequency_figure(details, out))
    pair = probes.pair
    if pair is not None:
        figs.append(sf.token_scatter_figure((details[pair[0]], details[pair[1]]), out))
    figs.append(sf.dead_figure(data, out))
    return figs


@dataclass(frozen=True)
class TargetSection:
    """One sparsity target's part of the page, keyed by its side (``targets.TargetSpec.side``): the figures
    it adds under "Figures" and its tables after the page's. A new target adds its section to ``SECTIONS``."""

    target: str
    figures: Callable[[StudyData, Path], list[sf.Figure]]
    tables: Callable[[StudyData], str]


SECTIONS = (TargetSection("output", output_figures, tables_html), TargetSection("input", input_figures, inputs_html))


def make_figures(data: StudyData, out: Path) -> list[sf.Figure]:
    """Every section's figures in page order, from the analysis files only."""
    return [fig for section in SECTIONS for fig in section.figures(data, out)]


def _not_drawn(data: StudyData) -> list[str]:
    lines = []
    if not data.widthdepth:
        lines.append("Width-depth figure not drawn: needs models of one size at two or more width-depth ratios.")
    if not data.scale:
        lines.append("Scale figures (limit across sizes, per-token scatter between scales) not drawn: needs models "
                     "of two or more sizes at a similar width-depth ratio.")
    return lines


def page_html(data: StudyData, figs: list[sf.Figure]) -> str:
    name, p, mode = data.setup.name, data.setup.p, data.setup.metric
    body = (f"<h1>Sparsing-law report: {esc(name)}</h1>"
            f"<p>{esc(data.setup.kind)}, {len(data.cells)} model(s), activation ratio tracked by "
            f"{esc('calibrated CETT' if mode == 'cett-calibrated' else f'PPL-{p:g}%')}, written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}.</p>"
            + comparison_html(data.comparison) + setup_html(data)
            + "<h2>Figures</h2>" + "".join(figure_html(f) for f in figs)
            + "".join(_one_line(x) for x in _not_drawn(data)) + "".join(section.tables(data) for section in SECTIONS))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sparsing-law report: '
            f"{esc(name)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")


def write_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``index.html`` (and the figures' PNG and CSV files) for the study or run at ``path`` from its
    analysis files; ``out`` defaults to ``path/report``."""
    path = Path(path)
    data = load(path)
    if not any(c.points for c in data.cells):
        raise DataError(f"{path}: nothing tracked yet (no activation ratio in the results store)")
    out = Path(out) if out else path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    figs = make_figures(data, out)
    atomic_write_text(out / ANALYSIS, json.dumps({**data.fits_document.to_dict(), "paper": data.comparison.to_dict(),
                                                   "pretrained": data.pretrained}, indent=1, default=str))
    return atomic_write_text(out / "index.html", page_html(data, figs))
