"""Axis helpers shared by every figure (the report's, ``pareto --plot``'s, ``fit --plot``'s).

matplotlib labels a log axis that spans less than a decade or two at its minor ticks as well, in
scientific notation ("3x10^4 4x10^4 ..."), and the labels collide. ``readable_log_axes`` relabels every log
axis of a figure just before it is saved: ticks at 1, 2 and 5 times the powers of ten when the axis spans at
most three decades (1 and 3 up to six, powers of ten beyond), written short ("30k", "2M", "0.005"), and no
minor labels.
"""

from __future__ import annotations

import math

from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))  # B: billions, as token counts are written


def short_number(value: float, _position=None) -> str:
    """30000 -> '30k', 2.5e9 -> '2.5B', 0.005 -> '0.005' (the tick label of a log axis)."""
    if value <= 0 or not math.isfinite(value):
        return ""
    for scale, suffix in SUFFIXES:
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float) -> list[float]:
    """Tick positions between ``low`` and ``high``: 1-2-5 per decade up to 3 decades, 1-3 up to 6, then
    powers of ten (thinned so at most about 8 remain)."""
    decades = math.log10(high / low)
    subs = (1, 2, 5) if decades <= 3 else (1, 3) if decades <= 6 else (1,)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in subs if low <= m * 10.0 ** e <= high * (1 + 1e-9)]
    stride = max(1, math.ceil(len(ticks) / 8))
    return ticks[::stride]


def readable_log_axes(fig) -> None:
    """Relabel every log-scaled axis of ``fig`` (see the module docstring); linear axes are left alone."""
    for ax in fig.get_axes():
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            if axis.get_scale() != "log" or not (low > 0 and high > low):
                continue
            ticks = log_ticks(low, high)
            if len(ticks) < 2:  # too narrow for two nice ticks: keep the ends
                ticks = [low, high]
            axis.set_major_locator(FixedLocator(ticks))
            axis.set_major_formatter(FuncFormatter(short_number))
            axis.set_minor_formatter(NullFormatter())
