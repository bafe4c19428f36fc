"""One self-contained HTML report for a study or a training run (issue 6).

``write_report(PATH)`` fits the laws on what ``PATH`` measured, draws the six figure groups (PNG, each with
its data as CSV, in ``PATH/report/``) and writes ``PATH/report/index.html`` with the figures embedded as
base64 PNG (it opens offline, nothing is fetched), the tables of fitted coefficients with their intervals,
every tracked measurement, and a plain statement of whether the trends agree with the paper's.
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

log = logging.getLogger("sparsinglaw")

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}td.num{text-align:right;font-family:monospace}figure{margin:1em 0 2em}
img{max-width:100%;border:1px solid #eee}.agrees{color:#060}.disagrees{color:#a00}.inconclusive{color:#860}
.summary{font-size:1.1em;padding:.6em;background:#f7f7f0;border-left:4px solid #999}"""


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


def coefficient_rows(analysis) -> list[list[Any]]:
    rows = []
    for cell in analysis.cells:
        fit = analysis.fits.get(cell.name)
        if fit is None:
            rows.append([cell.name, "–", "not fitted", None, None, None, analysis.failures.get(cell.name, "")])
            continue
        for name, value in fit.params.items():
            lo, hi = _interval(fit, name)
            rows.append([cell.name, fit.law, name, value, lo, hi, ""])
        rows.append([cell.name, fit.law, "MAE", fit.mae, None, None, f"{fit.n_points} points, {fit.n_skipped} skipped"])
        if fit.limit is not None:
            iv = fit.limit.interval
            rows.append([cell.name, fit.law, "limit A0", fit.limit.value if fit.limit.identified else None,
                         iv.low if iv else None, iv.high if iv else None, fit.limit.describe()])
    return rows


def tables_html(analysis, comparison: dict) -> str:
    lvl = f"{analysis.spec.level:.0%}"
    parts = ["<h2>Models</h2>", table("cells", ["cell", "activation", "d", "L", "r = d/L", "N (non-embedding)",
                                                "checkpoints measured", "final activation ratio", "final loss"],
             [[c.name, c.activation, c.hidden_size, c.num_layers, c.ratio, c.n_params, len(c.points),
               c.points[-1][1] if c.points else None, c.final_loss] for c in analysis.cells])]
    parts += [f"<h2>Fitted coefficients ({lvl} bootstrap intervals)</h2>",
              table("coefficients", ["cell", "law", "parameter", "value", "low", "high", "note"],
                    coefficient_rows(analysis))]
    wd = [[g["activation"], r["cell"], r["ratio"], r["limit"], r["low"], r["high"], r["final_loss"]]
          for g in analysis.widthdepth for r in g["rows"]]
    parts += ["<h2>Width-depth ratio</h2>", table("widthdepth", ["activation", "cell", "r", "A0", "low", "high",
                                                                 "final loss"], wd)]
    for g in analysis.widthdepth:
        if g["hinge"]:
            h = g["hinge"]
            parts.append(table("hinge", ["activation", "bottleneck r", "low", "high", "plateau", "slope"],
                               [[g["activation"], h["bottleneck"], h["low"], h["high"], h["plateau"], h["slope"]]]))
        if g["loss_range"]:
            lr = g["loss_range"]
            parts.append(table("lossrange", ["activation", "loss-optimal r from", "to", "best r", "advised r"],
                               [[g["activation"], lr["low"], lr["high"], lr["best_ratio"], lr["recommended"]]]))
    sc = [[g["activation"], m["curve"], m["n_params"], m["limit"], m["low"], m["high"]]
          for g in analysis.scale for m in g["models"]]
    parts += ["<h2>Scale</h2>", table("scale", ["activation", "cell", "N", "A0", "low", "high"], sc)]
    parts += ["<h2>Every tracked measurement</h2>",
              table("measurements", ["cell", "tokens", "activation ratio", "dead-neuron ratio"],
                    [[c.name, t, a, dict(c.dead).get(t)] for c in analysis.cells for t, a in c.points])]
    return "".join(parts)


def comparison_html(comparison: dict) -> str:
    rows = "".join(f'<tr><td>{esc(c["claim"])}</td><td>{esc(c["paper"])}</td><td>{esc(c["found"])}</td>'
                   f'<td class="{esc(c["verdict"])}">{esc(c["verdict"])}</td></tr>' for c in comparison["checks"])
    return (f'<h2>Agreement with the paper</h2><p class="summary" id="verdict">{esc(comparison["summary"])}</p>'
            f'<table id="paper"><thead><tr><th>check</th><th>paper</th><th>found</th><th>verdict</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _details(analysis, p: float) -> tuple[list[dict], tuple[dict, dict] | None]:
    """Per-layer frequencies and per-token ratios for the cells of the first scale group (else all, up to 3)."""
    from sparsinglaw.study.probe import detail

    by_name = {c.name: c for c in analysis.cells if c.points}
    names = [m["curve"] for m in analysis.scale[0]["models"]] if analysis.scale else list(by_name)[:3]
    details = []
    for name in names:
        try:
            details.append(detail(by_name[name], p=p))
        except Exception as err:  # noqa: BLE001 - a missing figure panel must not stop the report
            log.warning("cannot measure %s for the detail figures: %s", name, err)
    pair = None
    same = [d for d in details if d["token_detail"]]
    if len(same) >= 2 and same[0]["token_detail"]["token_ids"] == same[-1]["token_detail"]["token_ids"]:
        pair = (same[0], same[-1])
    return details, pair


def make_figures(analysis, out: Path, p: float) -> list[sf.Figure]:
    from sparsinglaw.study.probe import last_checkpoint, pareto

    chosen = next(c for c in analysis.cells if c.points)
    figs = [sf.pareto_figure(pareto(chosen, analysis.spec.pareto_points), chosen.name,
                             last_checkpoint(chosen).name, out),
            sf.curves_figure(analysis, out), sf.widthdepth_figure(analysis, out), sf.scale_figure(analysis, out)]
    details, pair = _details(analysis, p)
    figs += [sf.frequency_figure(details, out), sf.token_scatter_figure(pair, out), sf.dead_figure(analysis, out)]
    return figs


def write_report(path: str | Path, out: str | Path | None = None, *, analysis=None) -> Path:
    """Write ``index.html`` (and the figures' PNG and CSV files) for the study or run at ``path``
    (``analysis``: the fitting stage's result for ``path``, to avoid fitting twice)."""
    from sparsinglaw.errors import DataError
    from sparsinglaw.study.compare import compare_with_paper
    from sparsinglaw.study.fit import analyze_dir

    path = Path(path)
    if analysis is None:
        analysis, info = analyze_dir(path)
    else:
        from sparsinglaw.study.collect import collect

        info = {"name": path.name, "kind": "run"}
        if (path / "study.toml").is_file():
            info = collect(path)[1]
    if not any(c.points for c in analysis.cells):
        raise DataError(f"{path}: nothing tracked yet (no PPL-p% measurement in the results store)")
    out = Path(out) if out else path / "report"
    out.mkdir(parents=True, exist_ok=True)
    p = float(analysis.cells[0].setting.get("p", 1.0))
    figs = make_figures(analysis, out, p)
    comparison = compare_with_paper(analysis)
    atomic_write_text(out / "analysis.json", json.dumps({**analysis.to_dict(), "paper": comparison}, indent=1,
                                                        default=str))
    body = (f"<h1>Sparsing-law report: {esc(info['name'])}</h1>"
            f"<p>{esc(info['kind'])} at {esc(path.resolve())}, {len(analysis.cells)} model(s), PPL-{p:g}% activation "
            f"ratio, written {esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}.</p>"
            + comparison_html(comparison) + "<h2>Figures</h2>" + "".join(figure_html(f) for f in figs)
            + tables_html(analysis, comparison))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sparsing-law report: '
            f"{esc(info['name'])}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
    return atomic_write_text(out / "index.html", page)
