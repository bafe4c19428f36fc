"""Axis helpers shared by every figure: ``readable_log_axes`` relabels every log axis before saving (ticks
at 1, 2 and 5 times powers of ten as room allows, written short: "30k", "2M"; no minor labels), since
matplotlib's minor-tick labels collide on short log axes."""

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


def log_ticks(low: float, high: float, room: float = 0.0) -> list[float]:
    """Tick positions between ``low`` and ``high``: the densest of 1-2-5, 1-3 and 1 per decade (then every
    k-th decade) whose closest pair is at least ``room`` decades apart (the label's size over the axis length
    per decade)."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for subs, closest in (((1, 2, 5), math.log10(2)), ((1, 3), math.log10(3)), ((1,), 1.0)):
        if closest >= room:
            return [m * 10.0 ** e for e in range(first, last + 1) for m in subs if low <= m * 10.0 ** e <= high * (1 + 1e-9)]
    stride = math.ceil(room)
    return [10.0 ** e for e in range(first, last + 1) if e % stride == 0 and low <= 10.0 ** e <= high * (1 + 1e-9)]


def readable_log_axes(fig) -> None:
    """Relabel every log-scaled axis of ``fig`` (see the module docstring); linear axes are left alone."""
    for ax in fig.get_axes():
        box = ax.get_position()
        for axis, limits, inches in ((ax.xaxis, ax.get_xlim(), box.width * fig.get_figwidth()),
                                     (ax.yaxis, ax.get_ylim(), box.height * fig.get_figheight())):
            low, high = sorted(limits)
            if axis.get_scale() != "log" or not (low > 0 and high > low):
                continue
            size = axis.get_ticklabels()[0].get_fontsize() if axis.get_ticklabels() else 10
            # A label needs about 5 characters of width on x (0.6 em each), one line and a gap on y; 1.3x margin.
            label = 1.3 * size / 72 * (5 * 0.6 if axis is ax.xaxis else 1.4)
            ticks = log_ticks(low, high, label / (inches / math.log10(high / low)))
            if len(ticks) < 2:  # too narrow for two round ticks: keep the ends
                ticks = [low, high]
            axis.set_major_locator(FixedLocator(ticks))
            axis.set_major_formatter(FuncFormatter(short_number))
            axis.set_minor_formatter(NullFormatter())
