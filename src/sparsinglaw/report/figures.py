"""Measurement figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sparsinglaw.report.axes import readable_log_axes  # noqa: E402

METRIC_LABELS = {"topk": "Top-k", "fat": "FAT-ε", "cett": "CETT (PPL-p%)", "zero": "zero count", "pplp": "PPL-p%"}


def _save(fig, path: str | Path) -> Path:
    readable_log_axes(fig)  # no colliding minor-tick labels on any log axis
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)  # atomic: a reader never sees half a PNG
    return path


def pareto_plot(points: list[dict], path: str | Path, title: str = "", p: float = 1.0) -> Path:
    """``pareto_figure`` saved as a PNG."""
    return _save(pareto_figure(points, title, p), path)


def pareto_figure(points: list[dict], title: str = "", p: float = 1.0):
    """PPL ratio versus activation ratio, one line per metric (the paper's comparison of the metrics), on a
    linear PPL-ratio axis zoomed to where the comparison is made (up to 1 + max(10%, 3p%)), with the PPL-p%
    target 1 + p/100 as a line; settings above the zoom are counted in a note (the JSON has them all)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    target, top = 1 + p / 100, 1 + max(0.10, 3 * p / 100)
    for metric in dict.fromkeys(q["metric"] for q in points):
        mine = sorted((q for q in points if q["metric"] == metric), key=lambda q: q["activation_ratio"])
        ax.plot([q["activation_ratio"] for q in mine], [q["ppl_ratio"] for q in mine], "o-",
                label=METRIC_LABELS.get(metric, metric), markersize=4)
    ax.axhline(target, color="0.3", ls="--", lw=1, label=f"PPL-{p:g}% target ({target:.2f})")
    low = min([1.0, *(q["ppl_ratio"] for q in points)])
    ax.set_ylim(low - 0.005, top)
    shown = [q["activation_ratio"] for q in points if q["ppl_ratio"] <= top]  # the x range follows the zoom
    ax.set_xlim(max(0.0, min(shown, default=0.0) - 0.05), 1.02)
    ax.set_xlabel("activation ratio")
    ax.set_ylabel("PPL ratio (sparse / dense)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    off = sum(q["ppl_ratio"] > top for q in points)
    if off:
        ax.text(1.01, 0.0, f"{off} setting(s) above\n{top:.2f} not shown\n(the JSON has them)", fontsize=7,
                transform=ax.transAxes, va="bottom")
    ax.set_title(title or "Sparsity metrics: PPL versus activation ratio", fontsize=9)
    return fig


def token_heatmap(tokens: list[str], layer_ratios: list[list[float]], path: str | Path, title: str = "") -> Path:
    """Tokens (rows) by layers (columns) activation ratio map, token strings on the axis."""
    data = np.asarray(layer_ratios, dtype=float)
    height = max(3.0, 0.22 * len(tokens) + 1.0)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * data.shape[1] + 2.5), height))
    image = ax.imshow(data, aspect="auto", cmap="viridis", vmin=0.0, vmax=max(1e-9, float(np.nanmax(data))))
    ax.set_yticks(range(len(tokens)))
    ax.set_yticklabels([repr(t)[1:-1][:24] for t in tokens], fontsize=7, family="monospace")
    ax.set_xlabel("layer")
    ax.set_ylabel("token")
    fig.colorbar(image, ax=ax, label="activation ratio")
    ax.set_title(title or "Per-token activation ratio by layer")
    return _save(fig, path)


def frequency_histogram(neuron_frequency: list[list[float]], path: str | Path, title: str = "") -> Path:
    """Distribution of per-neuron activation frequency, one curve per layer (docs/paper.md section 4)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    cmap = plt.get_cmap("viridis")
    n = len(neuron_frequency)
    for i, freq in enumerate(neuron_frequency):
        hist, edges = np.histogram(freq, bins=bins, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, hist, color=cmap(i / max(1, n - 1)), alpha=0.7, lw=1)
    ax.set_xlabel("activation frequency (share of tokens a neuron is active on)")
    ax.set_ylabel("density of neurons")
    ax.set_title(title or "Activation frequency per layer (dark: first, light: last)")
    return _save(fig, path)
