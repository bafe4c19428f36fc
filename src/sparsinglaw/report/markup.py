"""HTML pieces every report section renders with: escaping, number formatting, tables, one-line notes,
and the rule that flags parameters at a fitting bound. Below ``report.html`` (the page) and
``report.inputs`` (its input-sparsity section) so that neither imports the other.
"""

from __future__ import annotations

import html
from typing import Any

from sparsinglaw.store.artifacts import Check

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


def at_bound(value: float | None, iv) -> bool:
    """A parameter the data do not pin down: its interval ends at a solver bound, or it ran off to a
    magnitude no activation curve needs (such values are artefacts of the optimizer, not estimates)."""
    if value is None:
        return False
    if iv is not None and (iv.at_lower_bound or iv.at_upper_bound):
        return True
    far = [abs(v) for v in (value, *( (iv.low, iv.high) if iv is not None else ())) if v is not None]
    return any(v > 1e4 or (0 < v < 1e-8) for v in far)


def _one_line(text: str) -> str:
    return f'<p class="na">{esc(text)}</p>'


def check_rows(checks: list[Check]) -> str:
    """Table rows of the paper's findings checked on the runs, each verdict coloured."""
    return "".join(f"<tr><td>{esc(c.claim)}</td><td>{esc(c.paper)}</td><td>{esc(c.found)}</td>"
                   f'<td class="{esc(c.verdict)}">{esc(c.verdict)}</td></tr>' for c in checks)
