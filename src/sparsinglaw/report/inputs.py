"""The report's "Input sparsity" section: rendered from ``fits.json`` and ``comparison.json`` (their
``inputs`` key, written by the analysis stages where input sparsity was tracked); nothing computed here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sparsinglaw.report import markup as page
from sparsinglaw.report import study_figures as sf
from sparsinglaw.report.data import CellView, FitView, IntervalView, StudyData

FIGURE = "7_input_kept_share"

NOT_TRACKED = ("Input sparsity was not tracked: run `sparsinglaw track RUN_DIR --input-sparsity` (a study: "
               "track.input_sparsity = true), then `sparsinglaw report PATH --analyze`.")


def _final_interval(row: dict, key: str) -> tuple[Any, Any]:
    """The interval recorded at the last checkpoint of ``row[key]`` (``[tokens, low, high]`` entries)."""
    points = row.get("points") or []
    if not points:
        return None, None
    last = {int(t): (lo, hi) for t, lo, hi in row.get(key) or []}
    return last.get(int(points[-1][0]), (None, None))


def _limit(row: dict) -> tuple[Any, Any, Any, str]:
    """The fitted law's limit and interval, or why there is none (as the fitting stage described it)."""
    fit = row.get("fit")
    if fit is None:
        return None, None, None, row.get("fit_error") or "not fitted"
    limit = fit.get("limit")
    if limit is None or not limit.get("identified"):
        return None, None, None, "limit not identified"
    iv = limit.get("interval") or {}
    if page.at_bound(limit.get("estimate"), IntervalView.from_dict(iv)):
        return None, None, None, "at a bound: not identified"
    return limit.get("estimate"), iv.get("low"), iv.get("high"), limit.get("describe", "")


def _section(data: StudyData) -> dict | None:
    section = data.fits_doc.get("inputs")
    return section if section and section.get("cells") else None


def input_figures(data: StudyData, out: Path) -> list[sf.Figure]:
    """The kept input share of every model against tokens with its fitted law (none when not tracked)."""
    section = _section(data)
    if section is None:
        return []
    view = SimpleNamespace(cells=[CellView.from_dict(c) for c in section["cells"]],
                           fits={c["cell"]: FitView.from_dict(c["fit"]) for c in section["cells"] if c.get("fit")},
                           level=float(section.get("level", data.level)))
    return [sf.curves_figure(view, out, quantity="kept input share", name=FIGURE)]


def model_rows(section: dict) -> list[list[Any]]:
    rows = []
    for row in section["cells"]:
        points = row.get("points") or []
        kept_lo, kept_hi = _final_interval(row, "intervals")
        bytes_lo, bytes_hi = _final_interval({**row, "points": row.get("bytes")}, "bytes_intervals")
        law = (row.get("fit") or {}).get("law", "–")
        rows.append([row["cell"], row["activation"], len(points), points[0][1] if points else None,
                     points[-1][1] if points else None, kept_lo, kept_hi, row.get("final_bytes_ratio"),
                     bytes_lo, bytes_hi, law, *_limit(row)])
    return rows


def verdicts_html(verdicts: dict) -> str:
    rows = [[c["claim"], c["paper"], c["found"], c["verdict"]] for c in verdicts["checks"]]
    body = "".join(f'<tr><td>{page.esc(a)}</td><td>{page.esc(b)}</td><td>{page.esc(c)}</td>'
                   f'<td class="{page.esc(v)}">{page.esc(v)}</td></tr>' for a, b, c, v in rows)
    return (f'<p class="summary" id="input-verdict">{page.esc(verdicts["summary"])}</p>'
            '<table id="input-paper"><thead><tr><th>check</th><th>paper (output sparsity)</th><th>found</th>'
            f"<th>verdict</th></tr></thead><tbody>{body}</tbody></table>")


def inputs_html(data: StudyData) -> str:
    """The section: the verdicts on input sparsity, then one row per model (kept share and weight bytes ratio
    at the first and last checkpoint with the last one's interval, the fitted law's limit)."""
    section, verdicts = _section(data), (data.comparison or {}).get("inputs")
    parts = ['<h2 id="input-sparsity">Input sparsity</h2>']
    if section is None:
        return parts[0] + page._one_line(NOT_TRACKED)
    lvl = f"{float(section.get('level', data.level)):.0%}"
    parts.append(f"<p>The kept share of every projection's inputs (q, k, v, o, gate, up, down) at the input "
                 f"CETT, tracked in the output metric's mode; the paper's laws fitted to it as to the activation "
                 f"ratio (figure {FIGURE}), and the paper's trends of output sparsity checked on it. Bytes: weight "
                 f"bytes read per token over the dense model's. Intervals: {lvl}.</p>")
    if verdicts:
        parts.append(verdicts_html(verdicts))
    parts.append(page.table("inputs", ["cell", "activation", "checkpoints", "first kept share", "final kept share",
                                       "low", "high", "final bytes ratio", "low", "high", "law", "limit", "low",
                                       "high", "note"], model_rows(section)))
    return "".join(parts)


__all__ = ["FIGURE", "NOT_TRACKED", "input_figures", "inputs_html", "model_rows"]
