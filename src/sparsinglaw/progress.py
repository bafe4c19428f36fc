"""Progress that shows wherever stderr goes: a tqdm bar on a terminal, else (``LoggedProgress``) an INFO
line through the ``sparsinglaw`` logger every ``every_fraction`` of the work or ``every_seconds``.
``--quiet`` silences both."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

log = logging.getLogger("sparsinglaw")


def progress_bar(total: int | None, desc: str, unit: str = "it", *, enabled: bool = True, initial: int = 0,
                 leave: bool = False, unit_scale: bool = False, stream=None, every_seconds: float = 10.0,
                 every_fraction: float = 0.1):
    """A tqdm bar on a terminal, a ``LoggedProgress`` elsewhere; both support update / set_postfix / close
    and ``with``. ``enabled=False`` gives a bar that shows nothing."""
    stream = sys.stderr if stream is None else stream
    from tqdm.auto import tqdm

    if not enabled or _is_terminal(stream):
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, disable=not enabled,
                    unit_scale=unit_scale, dynamic_ncols=True, file=stream)
    return LoggedProgress(total, desc, unit, initial=initial, every_seconds=every_seconds,
                          every_fraction=every_fraction)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class LoggedProgress:
    """tqdm's counting interface, reported as log lines (see the module docstring)."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", *, initial: int = 0,
                 every_seconds: float = 10.0, every_fraction: float = 0.1, clock=time.monotonic):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every_seconds, self.every_fraction, self.clock = every_seconds, every_fraction, clock
        self.started = self.last_time = clock()
        self.start_n = initial
        self.last_fraction = self._fraction()
        self.postfix: dict[str, Any] = {}
        self.closed = False

    def _fraction(self) -> float:
        return self.n / self.total if self.total else 0.0

    def update(self, count: int = 1) -> None:
        self.n += count
        now = self.clock()
        stepped = self.total and self._fraction() - self.last_fraction >= self.every_fraction - 1e-12
        if stepped or now - self.last_time >= self.every_seconds:
            self._log(now)

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = values

    def line(self, now: float | None = None) -> str:
        """``train: 40% (3.3k/8.2k tok), 1.2k tok/s, ETA 4 s, loss=3.21``."""
        now = self.clock() if now is None else now
        rate = (self.n - self.start_n) / max(now - self.started, 1e-9)
        count = f"{_short(self.n)}/{_short(self.total)}" if self.total else _short(self.n)
        share = f"{100 * self._fraction():.0f}% " if self.total else ""
        text = f"{self.desc}: {share}({count} {self.unit}), {_short(rate)} {self.unit}/s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", ETA {(self.total - self.n) / rate:.0f} s"
        return text + "".join(f", {k}={v}" for k, v in self.postfix.items())

    def _log(self, now: float) -> None:
        log.info(self.line(now))
        self.last_time, self.last_fraction = now, self._fraction()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n != self.start_n and (not self.total or self._fraction() > self.last_fraction):
                self._log(self.clock())  # the end of the work, unless that line was just written

    def __enter__(self) -> LoggedProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(value: float | None) -> str:
    """1234 -> 1.2k, 5_600_000 -> 5.6M (as tqdm's unit_scale)."""
    if value is None:
        return "?"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def passes_left(search, fit) -> int:
    """An estimate of the sparse passes a trend search still needs: none once converged, one (the
    confirming pass) when the stop rule holds, else the passes near the crossing scaled by how far the
    standard error is from the tolerance, plus one; the budget left while no trend exists, and at most that."""
    budget = search.max_passes - len(search.cetts)
    se = getattr(fit, "stop_se", math.inf)
    if not math.isfinite(se):
        return budget
    if se <= search.tol:
        return min(budget, 1)
    near = max(1, sum(abs(math.log(c) - fit.log_cett) <= 0.25 for c in search.cetts))
    return min(budget, math.ceil(near * ((se / search.tol) ** 2 - 1)) + 1)


def search_reporter(desc: str, max_passes: int, describe=None):
    """An ``on_pass(search, fit)`` for a trend search that logs one plain line per pass through the
    ``sparsinglaw`` logger (readable on a terminal and in a log file alike): the pass count, the setting just
    tried and its PPL ratio, the answer so far and an estimate of the passes left."""
    def on_pass(search, fit) -> None:
        label = describe or search.label
        c, r = search.cetts[-1], float(search.ratios()[-1])
        error = f"standard error {fit.stop_se:.2g}" if math.isfinite(fit.stop_se) else "standard error not measured yet"
        answer = "no trend yet" if not math.isfinite(fit.se_ratio) else (
            f"answer so far {label(math.exp(min(fit.log_cett, 0.0)))} ({error})")
        log.info("%s: pass %d of at most %d, %s -> PPL ratio %.4f; %s; about %d more pass(es)", desc,
                 len(search.cetts), max_passes, label(c), r, answer, passes_left(search, fit))

    return on_pass


class PartialResults:
    """What an interrupted command has kept, so that Ctrl-C says where, and never claims what was not written:
    ``track()`` at the start, ``kept(key, where)`` after each piece written, ``message()`` for the handler."""

    def __init__(self) -> None:
        self.tracking, self.notes = False, {}

    def track(self) -> None:
        self.tracking, self.notes = True, {}

    def kept(self, key: str, where: str) -> None:
        self.notes[key] = where

    def message(self) -> str:
        if self.notes:
            return "interrupted: kept " + "; ".join(self.notes.values())
        if self.tracking:
            return "interrupted: nothing finished, so no results were written"
        return "interrupted: partial results already written are kept"


partial_results = PartialResults()
