"""Log-axis tick labels never collide, on the narrow spans where matplotlib labels minor ticks too."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sparsinglaw.report.axes import log_ticks, readable_log_axes, short_number  # noqa: E402


def _labels(fig, axis):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = [*axis.get_major_ticks(), *axis.get_minor_ticks()]
    lo, hi = sorted(axis.get_view_interval())
    return [(t.label1.get_text(), t.label1.get_window_extent(renderer)) for t in ticks
            if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


def _overlapping(labels) -> list[tuple[str, str]]:
    return [(a, b) for i, (a, box_a) in enumerate(labels) for b, box_b in labels[i + 1:] if box_a.overlaps(box_b)]


@pytest.mark.parametrize("span", [(2e4, 9e4), (3e4, 4.5e4), (1e5, 3e7), (1e3, 1e12), (0.002, 0.9)])
def test_log_axis_labels_do_not_overlap(span):
    fig, ax = plt.subplots(figsize=(4, 3))  # narrower than any report panel
    ax.plot(span, [0, 1])
    ax.set_xscale("log")
    readable_log_axes(fig)
    labels = _labels(fig, ax.xaxis)
    assert len(labels) >= 2, labels
    assert not _overlapping(labels), _overlapping(labels)
    plt.close(fig)


def test_ticks_and_labels_read_plainly():
    assert log_ticks(2e4, 9e4) == [2e4, 5e4]
    assert log_ticks(1e5, 1e7, room=0.4) == [1e5, 3e5, 1e6, 3e6, 1e7]
    assert log_ticks(1, 1e12, room=2.5) == [1, 1e3, 1e6, 1e9, 1e12]
    assert [short_number(v) for v in (3e4, 2.5e9, 1e6, 0.005, 200)] == ["30k", "2.5B", "1M", "0.005", "200"]
