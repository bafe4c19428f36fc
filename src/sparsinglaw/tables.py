"""Numbers a person reads: estimates rounded to what their interval resolves, intervals beside them, columns
aligned, and a reason where an estimate has no interval. No imports from the package, so every result
type and the CLI share it; JSON keeps full precision."""

from __future__ import annotations

import math

# The reasons a table gives where an estimate has no interval (rather than leaving the column blank).
ONE_PASS = "no interval: one pass"


def interval_decimals(low: float | None, high: float | None) -> int | None:
    """Decimals that show an interval's width to two significant digits (the estimate is rounded the same
    way: digits beyond those are noise); None for a missing or degenerate interval."""
    if low is None or high is None or not math.isfinite(high - low) or high <= low:
        return None
    return max(0, 1 - math.floor(math.log10(high - low)))


def error_decimals(error: float | None) -> int | None:
    """Decimals that show a standard error (or sd) to two significant digits; None when there is none."""
    if error is None or not math.isfinite(error) or error <= 0:
        return None
    return max(0, 1 - math.floor(math.log10(error)))


def column_decimals(values, digits: int = 3) -> int:
    """Decimals that give a column's smallest nonzero magnitude ``digits`` significant digits (the others get
    the same decimals, so the column's points line up and no value is cut to one digit)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return digits
    return max(0, digits - 1 - math.floor(math.log10(min(finite))))


def format_number(value, decimals: int | None = None) -> str:
    """A float to ``decimals`` places, or to 4 significant digits; other values as they are; None and NaN
    as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}" if decimals is not None else f"{value:.4g}"
    return str(value)


def format_estimate(value, interval=None, *, missing: str = "-") -> tuple[str, str]:
    """(estimate, ``[low, high]``) both rounded to the interval's precision; without an interval the estimate
    keeps 4 significant digits and the interval reads ``missing`` (say why: ``ONE_PASS``)."""
    low, high = interval if interval is not None else (None, None)
    decimals = interval_decimals(low, high)
    if decimals is None and low is not None and low == high and math.isfinite(low):
        decimals = column_decimals([value, low], digits=4)  # a zero-width interval (exact data): 4 digits
    if decimals is None:
        return format_number(value), missing
    return format_number(value, decimals), f"[{low:.{decimals}f}, {high:.{decimals}f}]"


def estimate_cell(value, interval=None, *, missing: str = "") -> str:
    """``0.152 [0.141, 0.163]`` in one cell (for tables with several estimates a row); ``missing`` after the
    4-significant-digit estimate where there is no interval."""
    text, bounds = format_estimate(value, interval, missing=missing)
    return f"{text} {bounds}".rstrip()


def format_with_error(value, error: float | None, *, signed: bool = False) -> tuple[str, str]:
    """(estimate, ``± error``) both rounded to the error's second significant digit; ('-', '-') for a missing
    value, and the estimate to 4 significant digits with '-' where there is no error."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-", "-"
    decimals = error_decimals(error)
    if decimals is None:
        return (f"{value:+.4g}" if signed else format_number(value)), "-"
    sign = "+" if signed else ""
    return f"{value:{sign}.{decimals}f}", f"± {error:.{decimals}f}"


def aligned_table(header: list[str], rows: list[list], *, left: int = 1, align: str | None = None) -> str:
    """A text table whose columns are as wide as their widest cell: the first ``left`` columns (names)
    left-aligned, the rest (numbers, intervals) right-aligned, or per column as ``align`` says ('l' / 'r');
    cells are formatted with ``format_number``; a rule under the header marks each column."""
    cells = [[format_number(c) if not isinstance(c, str) else c for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    align = align or "l" * left + "r" * (len(header) - left)
    lines = ["  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align))
             for row in cells]
    # The rule marks each column's span (a long last text column: as wide as its header, the text runs on).
    rule = ["-" * (len(cells[0][-1]) if i == len(widths) - 1 and a == "l" else w)
            for i, (w, a) in enumerate(zip(widths, align))]
    lines.insert(1, "  ".join(rule))
    return "\n".join(line.rstrip() for line in lines)


def key_value_table(doc: dict) -> str:
    """``key  value`` lines, keys aligned: the human form of a flat summary (nested values are left to --json);
    floats to 4 significant digits (the full values are in --json)."""
    plain = {key: value for key, value in doc.items() if not isinstance(value, dict | list)}
    width = max(map(len, plain), default=0)
    return "\n".join(f"{key:<{width}}  {format_number(value)}" for key, value in plain.items())

