"""One self-contained HTML report for a study or a training run (issues 6, 17).

``write_report(PATH)`` tells the story in order: the verdicts against the paper with their intervals, the
setup (models, parameters, tokens and epochs, evaluation tokens, wall time), then the figures (the metric
comparison on a pretrained model, the tracked activation ratios with per-checkpoint intervals and fitted
laws, the paper's published curves and fits beside ours, width-depth and scale where the study has them,
per-layer frequencies, dead neurons) and the tables, with the paper's values beside ours. Parameters at a
bound are flagged, never printed as estimates; a section that cannot apply is one line saying why.

What it draws comes from the study's files (``sparsinglaw.study.files``: ``pretrained.json``, ``probes.json``,
``timings.json``, the results stores); only a bare training run, which has no probe stage, is measured here.
The laws' fitted objects come from the fitting stage (``analysis``) or are refitted from the stores.
Figures are PNG with their data as CSV in ``PATH/report/``, embedded as base64 (the page opens offline).
Every piece of text that comes from data (cell and file names, token strings) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from pathlib import Path
from typing import Any

from sparsinglaw.fileio import atomic_write_text
from sparsinglaw.report import study_figures as sf
from sparsinglaw.study import files

log = logging.getLogger("sparsinglaw")

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}td.num{text-align:right;font-family:monospace}figure{margin:1em 0 2em}
img{max-width:100%;border:1px solid #eee}.agrees{color:#060}.disagrees{color:#a00}.inconclusive{color:#860}
.summary{font-size:1.1em;padding:.6em;background:#f7f7f0;border-left:4px solid #999}.na{color:#666;font-style:italic}"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers as 6 significant digits (the tests compare them with the store at that precision)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return esc(value)


def table(table_id: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{fmt(v)}</td>' if isinstance(v, int | float) and not isinstance(v, bool)
                         else f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure_html(fig: sf.Figure) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{esc(fig.name)}"><h3>{esc(fig.title)}</h3>'
            f'<img alt="{esc(fig.title)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{esc(fig.caption)} Files: {esc(fig.png.name)}, {esc(fig.csv.name)}.</figcaption></figure>')


def _interval(fit, name: str) -> tuple[Any, Any]:
    iv = fit.intervals.get(name)
    return (iv.low, iv.high) if iv is not None else (None, None)


def at_bound(value: float | None, iv) -> bool:
    """A parameter the data do not pin down: its interval ends at a solver bound, or it ran off to a
    magnitude no activation curve needs (such values are artefacts of the optimizer, not estimates)."""
    if value is None:
        return False
    if iv is not None and (iv.at_lower_bound or iv.at_upper_bound):
        return True
    far = [abs(v) for v in (value, *( (iv.low, iv.high) if iv is not None else ())) if v is not None]
    return any(v > 1e4 or (0 < v < 1e-8) for v in far)


def _published(law: str, name: str) -> float | None:
    """The paper's 0.1B value of a parameter of the ReLU or SiLU law (PAPER.md section 3)."""
    from sparsinglaw.study.paper_ref import PUBLISHED_FITS

    return PUBLISHED_FITS.get(f"0.1b_{law}", {}).get(name)


def coefficient_rows(analysis) -> list[list[Any]]:
    """One row per fitted parameter, with the paper's 0.1B value beside it; parameters at a bound are
    flagged instead of printed (their values are the optimizer's, not the data's)."""
    rows = []
    for cell in analysis.cells:
        fit = analysis.fits.get(cell.name)
        if fit is None:
            rows.append([cell.name, "–", "not fitted", None, None, None, None, analysis.failures.get(cell.name, "")])
            continue
        for name, value in fit.params.items():
            iv, paper = fit.intervals.get(name), _published(fit.law, name)
            if at_bound(value, iv):
                rows.append([cell.name, fit.law, name, None, None, None, paper,
                             "at a bound: not identified by these points"])
                continue
            lo, hi = _interval(fit, name)
            rows.append([cell.name, fit.law, name, value, lo, hi, paper, ""])
        rows.append([cell.name, fit.law, "MAE", fit.mae, None, None, 4.07e-4 if fit.law == "relu" else None,
                     f"{fit.n_points} points, {fit.n_skipped} skipped"])
        if fit.limit is not None:
            iv = fit.limit.interval
            ok = fit.limit.identified and not at_bound(fit.limit.value, iv)
            rows.append([cell.name, fit.law, "limit A0", fit.limit.value if ok else None,
                         iv.low if iv and ok else None, iv.high if iv and ok else None, _published(fit.law, "A0"),
                         fit.limit.describe() if ok or not fit.limit.identified else "at a bound: not identified"])
    return rows


def _one_line(text: str) -> str:
    return f'<p class="na">{esc(text)}</p>'


def tables_html(analysis, comparison: dict) -> str:
    lvl = f"{analysis.spec.level:.0%}"
    parts = ["<h2>Models</h2>", table("cells", ["cell", "activation", "d", "L", "r = d/L", "N (non-embedding)",
                                                "checkpoints measured", "final activation ratio", "final loss"],
             [[c.name, c.activation, c.hidden_size, c.num_layers, c.ratio, c.n_params, len(c.points),
               c.points[-1][1] if c.points else None, c.final_loss] for c in analysis.cells])]
    parts += [f"<h2>Fitted coefficients ({lvl} bootstrap intervals)</h2>",
              table("coefficients", ["cell", "law", "parameter", "value", "low", "high", "paper (0.1B)", "note"],
                    coefficient_rows(analysis))]
    parts.append("<h2>Width-depth ratio</h2>")
    if not analysis.widthdepth:
        parts.append(_one_line("Not applicable: needs models of one size at two or more width-depth ratios."))
    wd = [[g["activation"], r["cell"], r["ratio"], r["limit"], r["low"], r["high"], r["final_loss"]]
          for g in analysis.widthdepth for r in g["rows"]]
    if wd:
        parts.append(table("widthdepth", ["activation", "cell", "r", "A0", "low", "high", "final loss"], wd))
    for g in analysis.widthdepth:
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
          for g in analysis.scale for m in g["models"]]
    parts.append(table("scale", ["activation", "cell", "N", "A0", "low", "high"], sc) if sc else
                 _one_line("Not applicable: needs models of two or more sizes at a similar width-depth ratio."))
    parts += ["<h2>Every tracked measurement</h2>",
              table("measurements", ["cell", "tokens", "activation ratio", "low", "high", "dead-neuron ratio"],
                    [[c.name, t, a, *c.intervals.get(t, (None, None)), dict(c.dead).get(t)]
                     for c in analysis.cells for t, a in c.points])]
    return "".join(parts)


def setup_html(analysis, info: dict, path: Path, pretrained: dict | None, paper: list[dict]) -> str:
    """The study at a glance: models, parameters, tokens, evaluation tokens, wall time."""
    cfg = info.get("config")
    track = cfg.track if cfg is not None else None
    rows = [[c.name, c.activation, f"{c.hidden_size} x {c.num_layers}", c.n_params, c.tokens_budget,
             c.epochs, len(c.points), c.points[-1][1] if c.points else None,
             (lambda iv: f"[{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "–")(c.intervals.get(c.points[-1][0]) if c.points else None)]
            for c in analysis.cells]
    parts = ["<h2>Setup</h2>", table("setup", ["model", "activation", "d x L", "N (non-embedding)", "training tokens",
                                                "epochs of the corpus", "checkpoints", "final activation ratio",
                                                "its interval"], rows)]
    facts = []
    if track is not None:
        mode = (f"one CETT calibrated on the last {track.calibrate_last} checkpoints (PPL-{track.p:g}% on their "
                "mean), per-layer thresholds recomputed per checkpoint" if track.mode == "cett-calibrated"
                else f"PPL-{track.p:g}% solved per checkpoint")
        data = (cfg.base.get("data") or {}).get("source", "builtin")
        facts.append(f"Training text: {data}. Tracking: {mode}, on {track.max_tokens:,} validation tokens "
                     "(documents never trained on).")
    if pretrained:
        facts.append(f"Metric comparison: {pretrained['model']} on {pretrained['tokens']:,} tokens.")
    timings = _read_json(path / files.TIMINGS)
    if timings:
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in timings.get("stages", {}).items())
        facts.append(f"Wall time to the report: {timings['wall']:.0f} s ({stages}).")
    facts.append(f"The paper's curves: {len(paper)} published models shown beside ours." if paper else
                 "The paper's curves are not available here, so they are not shown.")
    return "".join(parts) + "".join(f"<p>{esc(f)}</p>" for f in facts)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def comparison_html(comparison: dict) -> str:
    rows = "".join(f'<tr><td>{esc(c["claim"])}</td><td>{esc(c["paper"])}</td><td>{esc(c["found"])}</td>'
                   f'<td class="{esc(c["verdict"])}">{esc(c["verdict"])}</td></tr>' for c in comparison["checks"])
    return (f'<h2>Agreement with the paper</h2><p class="summary" id="verdict">{esc(comparison["summary"])}</p>'
            f'<table id="paper"><thead><tr><th>check</th><th>paper</th><th>found</th><th>verdict</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def make_figures(analysis, out: Path, probes: dict, pretrained: dict | None, paper: list[dict]) -> list[sf.Figure]:
    """The figures from the study's measured files (``probes``: ``sparsinglaw.study.probe.probe_study``)."""
    figs = [sf.pretrained_figure(pretrained, out)] if pretrained else []
    if not pretrained and probes.get("pareto"):  # no pretrained model: the comparison on a cell instead
        pareto = probes["pareto"]
        figs.append(sf.pareto_figure(pareto["points"], pareto["cell"], pareto["checkpoint"], out))
    figs += [sf.curves_figure(analysis, out), sf.paper_figure(paper, analysis, out)]
    if analysis.widthdepth:
        figs.append(sf.widthdepth_figure(analysis, out))
    if analysis.scale:
        figs.append(sf.scale_figure(analysis, out))
    details = probes.get("details") or []
    figs.append(sf.frequency_figure(details, out))
    pair = probes.get("pair")
    if pair is not None:
        figs.append(sf.token_scatter_figure((details[pair[0]], details[pair[1]]), out))
    figs.append(sf.dead_figure(analysis, out))
    return figs


def _not_drawn(analysis, pair_drawn: bool) -> list[str]:
    lines = []
    if not analysis.widthdepth:
        lines.append("Width-depth figure not drawn: needs models of one size at two or more width-depth ratios.")
    if not analysis.scale:
        lines.append("Scale figures (limit across sizes, per-token scatter between scales) not drawn: needs models "
                     "of two or more sizes at a similar width-depth ratio.")
    return lines


def write_report(path: str | Path, out: str | Path | None = None, *, analysis=None) -> Path:
    """Write ``index.html`` (and the figures' PNG and CSV files) for the study or run at ``path``
    (``analysis``: the fitting stage's result for ``path``, to avoid fitting twice)."""
    from sparsinglaw.errors import DataError
    from sparsinglaw.study.compare import compare_with_paper
    from sparsinglaw.study.fit import analyze_dir
    from sparsinglaw.study.paper_ref import paper_curves

    path = Path(path)
    if analysis is None:
        analysis, info = analyze_dir(path)
    else:
        from sparsinglaw.study.collect import collect

        info = {"name": path.name, "kind": "run"}
        if (path / files.STUDY_FILE).is_file():
            info = collect(path)[1]
    if not any(c.points for c in analysis.cells):
        raise DataError(f"{path}: nothing tracked yet (no activation ratio in the results store)")
    out = Path(out) if out else path / files.REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    p = float(analysis.cells[0].setting.get("p", 1.0))
    pretrained, paper = _read_json(path / files.PRETRAINED), paper_curves()
    probes = _read_json(path / files.PROBES)
    if probes is None:  # a bare training run (or a study from before the probe stage): measure here
        from sparsinglaw.study.probe import probe_study

        probes = probe_study(analysis, p, with_pareto=pretrained is None)
    figs = make_figures(analysis, out, probes, pretrained, paper)
    comparison = compare_with_paper(analysis)
    atomic_write_text(out / files.ANALYSIS, json.dumps({**analysis.to_dict(), "paper": comparison,
                                                         "pretrained": pretrained}, indent=1, default=str))
    mode = analysis.cells[0].metric
    body = (f"<h1>Sparsing-law report: {esc(info['name'])}</h1>"
            f"<p>{esc(info['kind'])}, {len(analysis.cells)} model(s), activation ratio tracked by "
            f"{esc('calibrated CETT' if mode == 'cett-calibrated' else f'PPL-{p:g}%')}, written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}.</p>"
            + comparison_html(comparison) + setup_html(analysis, info, path, pretrained, paper)
            + "<h2>Figures</h2>" + "".join(figure_html(f) for f in figs)
            + "".join(_one_line(x) for x in _not_drawn(analysis, True))
            + tables_html(analysis, comparison))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sparsing-law report: '
            f"{esc(info['name'])}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
    return atomic_write_text(out / "index.html", page)
