"""The report's "Input sparsity" section: rendered from ``fits.json`` and ``comparison.json`` (their
``inputs`` key, written by the analysis stages where input sparsity was tracked); nothing computed here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sparsinglaw.report import markup as page
from sparsinglaw.report import study_figures as sf
from sparsinglaw.report.data import StudyData, cell_views, fit_views
from sparsinglaw.store.artifacts import CellRecord, ComparisonDocument, FitsDocument

FIGURE = "7_input_kept_share"

NOT_TRACKED = ("Input sparsity was not tracked: run `sparsinglaw track RUN_DIR --input-sparsity` (a study: "
               "track.input_sparsity = true), then `sparsinglaw report PATH --analyze`.")


def _final_interval(points: list, intervals: list) -> tuple[Any, Any]:
    """The interval recorded at the last checkpoint of ``points`` (``intervals``: [tokens, low, high])."""
    if not points:
        return None, None
    last = {int(t): (lo, hi) for t, lo, hi in intervals or []}
    return last.get(int(points[-1][0]), (None, None))


def _limit(row: CellRecord) -> tuple[Any, Any, Any, str]:
    """The fitted law's limit and interval, or why there is none (as the fitting stage described it)."""
    if row.fit is None:
        return None, None, None, row.fit_error or "not fitted"
    limit = row.fit.limit
    if limit is None or not limit.identified:
        return None, None, None, "limit not identified"
    iv = limit.interval
    if page.at_bound(limit.estimate, iv):
        return None, None, None, "at a bound: not identified"
    return limit.estimate, iv.low if iv else None, iv.high if iv else None, limit.describe


def _section(data: StudyData) -> FitsDocument | None:
    section = data.fits_document.inputs if data.fits_document is not None else None
    return section if section is not None and section.cells else None


def input_figures(data: StudyData, out: Path) -> list[sf.Figure]:
    """The kept input share of every model against tokens with its fitted law (none when not tracked)."""
    section = _section(data)
    if section is None:
        return []
    view = SimpleNamespace(cells=cell_views(section), fits=fit_views(section), level=section.level)
    return [sf.curves_figure(view, out, quantity="kept input share", name=FIGURE)]


def model_rows(section: FitsDocument) -> list[list[Any]]:
    rows = []
    for row in section.cells:
        points = row.points
        kept_lo, kept_hi = _final_interval(points, row.intervals)
        bytes_lo, bytes_hi = _final_interval(row.bytes or [], row.bytes_intervals)
        law = row.fit.law if row.fit is not None else "–"
        rows.append([row.cell, row.activation, len(points), points[0][1] if points else None,
                     points[-1][1] if points else None, kept_lo, kept_hi, row.final_bytes_ratio,
                     bytes_lo, bytes_hi, law, *_limit(row)])
    return rows


def verdicts_html(verdicts: ComparisonDocument) -> str:
    return (f'<p class="summary" id="input-verdict">{page.esc(verdicts.summary)}</p>'
            '<table id="input-paper"><thead><tr><th>check</th><th>paper (output sparsity)</th><th>found</th>'
            f"<th>verdict</th></tr></thead><tbody>{page.check_rows(verdicts.checks)}</tbody></table>")


def inputs_html(data: StudyData) -> str:
    """The section: the verdicts on input sparsity, then one row per model (kept share and weight bytes ratio
    at the first and last checkpoint with the last one's interval, the fitted law's limit)."""
    section, verdicts = _section(data), data.comparison.inputs
    parts = ['<h2 id="input-sparsity">Input sparsity</h2>']
    if section is None:
        return parts[0] + page._one_line(NOT_TRACKED)
    lvl = f"{section.level:.0%}"
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
