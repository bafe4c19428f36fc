"""The study report's figures (issue 6): each writes ``NAME.png`` and its data as ``NAME.csv``.

Every function takes the ``Analysis`` (and measured extras) and an output directory and returns a
``Figure`` record. A figure whose data the study lacks (e.g. one model size only) is still drawn, with a
note saying what is missing, so every group is always present.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sparsinglaw.fileio import atomic_write_text  # noqa: E402
from sparsinglaw.report.figures import METRIC_LABELS, _save  # noqa: E402


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    png: Path
    csv: Path


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return atomic_write_text(path, buf.getvalue())


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax, size: int = 7) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=size)


def _finish(fig, out: Path, name: str, title: str, caption: str, header: list[str], rows: list[list]) -> Figure:
    png = _save(fig, out / f"{name}.png")
    return Figure(name, title, caption, png, write_csv(out / f"{name}.csv", header, rows))


def pareto_figure(points: list[dict], cell: str, checkpoint: str, out: Path) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for metric in dict.fromkeys(p["metric"] for p in points):
        mine = sorted((p for p in points if p["metric"] == metric), key=lambda p: p["activation_ratio"])
        ax.plot([p["activation_ratio"] for p in mine], [p["ppl_ratio"] for p in mine], "o-", markersize=4,
                label=METRIC_LABELS.get(metric, metric))
    ax.set_xlabel("activation ratio")
    ax.set_ylabel("PPL ratio (sparse / dense)")
    ax.grid(alpha=0.3)
    _legend(ax, 8)
    ax.set_title(f"{cell} / {checkpoint}", fontsize=9)
    rows = [[p["metric"], p["value"], p["activation_ratio"], p["ppl_ratio"]] for p in points]
    return _finish(fig, out, "1_pareto", "PPL ratio versus activation ratio",
                   f"Top-k, FAT-ε and CETT (the PPL-p% family) on {cell}, {checkpoint}.",
                   ["metric", "setting", "activation_ratio", "ppl_ratio"], rows)


def curves_figure(analysis, out: Path) -> Figure:
    acts = list(dict.fromkeys(c.activation for c in analysis.cells))
    fig, axes = plt.subplots(1, len(acts), figsize=(5.5 * len(acts), 4), squeeze=False)
    rows = []
    for ax, act in zip(axes[0], acts):
        for cell in (c for c in analysis.cells if c.activation == act):
            if not cell.points:
                continue
            t, a = np.array(cell.points, float).T
            dots = ax.plot(t, a, "o", markersize=3, label=cell.name)[0]
            rows += [[cell.name, "measured", x, y, None, None] for x, y in cell.points]
            fit = analysis.fits.get(cell.name)
            if fit is None:
                continue
            grid = np.geomspace(t.min(), t.max(), 60)
            pred = np.clip(fit.predict(grid / 1e9), 0.0, 1.0)  # an activation ratio: shown within [0, 1]
            band = fit.band(grid / 1e9)
            band = None if band is None else (np.clip(band[0], 0.0, 1.0), np.clip(band[1], 0.0, 1.0))
            ax.plot(grid, pred, color=dots.get_color(), lw=1.2)
            if band is not None:
                ax.fill_between(grid, *band, color=dots.get_color(), alpha=0.2, lw=0)
            lo, hi = band if band is not None else (pred * np.nan, pred * np.nan)
            rows += [[cell.name, f"{fit.law} law", g, p, lo_, hi_] for g, p, lo_, hi_ in zip(grid, pred, lo, hi)]
        if ax.has_data():
            ax.set_xscale("log")
            top = max((a for c in analysis.cells if c.activation == act for _, a in c.points), default=1.0)
            ax.set_ylim(0.0, min(1.0, 1.3 * top + 0.01))
        ax.set_xlabel("training tokens")
        ax.set_ylabel("activation ratio (PPL-p%)")
        ax.set_title(act)
        _legend(ax, 7)
    return _finish(fig, out, "2_activation_vs_tokens", "Activation ratio versus training tokens",
                   f"Each model's tracked PPL-p% activation ratio with its fitted law and {analysis.spec.level:.0%} "
                   "bootstrap band, one panel per activation.",
                   ["cell", "series", "tokens", "activation_ratio", "band_low", "band_high"], rows)


def widthdepth_figure(analysis, out: Path) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = []
    for group in analysis.widthdepth:
        label = f"{group['activation']}, {group['tokens']} tokens"
        ok = [r for r in group["rows"] if r["limit"] is not None and r["identified"]]
        if ok:
            r = np.array([x["ratio"] for x in ok])
            y = np.array([x["limit"] for x in ok])
            err = np.array([[x["limit"] - (x["low"] if x["low"] is not None else x["limit"]) for x in ok],
                            [(x["high"] if x["high"] is not None else x["limit"]) - x["limit"] for x in ok]])
            left.errorbar(r, y, yerr=np.clip(err, 0, None), fmt="o", capsize=3, label=label)
        hinge = group.get("hinge")
        if hinge:
            grid = np.linspace(min(r), max(r), 100)
            left.plot(grid, hinge["plateau"] + hinge["slope"] * np.minimum(grid - hinge["bottleneck"], 0), lw=1)
        losses = [x for x in group["rows"] if x["final_loss"] is not None]
        right.plot([x["ratio"] for x in losses], [x["final_loss"] for x in losses], "o-", label=label)
        rows += [[group["activation"], x["cell"], x["ratio"], x["limit"], x["low"], x["high"], x["final_loss"]]
                 for x in group["rows"]]
    if analysis.widthdepth and not left.has_data():
        left.text(0.5, 0.5, "no identified limit A0 (see the coefficient table)", ha="center", transform=left.transAxes)
    if not analysis.widthdepth:
        _note(left, "needs models of one size at two or more width-depth ratios")
        _note(right, "needs models of one size at two or more width-depth ratios")
    else:
        left.set_xscale("log")
        left.set(xlabel="width-depth ratio r", ylabel="limit activation ratio A0")
        _legend(left, 7)
        right.set_xscale("log")
        right.set(xlabel="width-depth ratio r", ylabel="final loss")
        _legend(right, 7)
    return _finish(fig, out, "3_width_depth", "Limit activation ratio and loss versus width-depth ratio",
                   "Left: A0 with its interval, identified limits only (hinge fit when four or more). "
                   "Right: final validation loss.",
                   ["activation", "cell", "ratio", "limit", "limit_low", "limit_high", "final_loss"], rows)


def scale_figure(analysis, out: Path) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = []
    for group in analysis.scale:
        for m in group["models"]:
            rows.append([group["activation"], m["curve"], m["n_params"], m["limit"], m["low"], m["high"],
                         *m["slope"]])
        ms = [m for m in group["models"] if m["limit"] is not None and m["identified"]]
        err = [[m["limit"] - (m["low"] if m["low"] is not None else m["limit"]) for m in ms],
               [(m["high"] if m["high"] is not None else m["limit"]) - m["limit"] for m in ms]]
        left.errorbar([m["n_params"] for m in ms], [m["limit"] for m in ms], yerr=np.clip(err, 0, None),
                      fmt="o-", capsize=3, label=group["activation"])
        for m in group["models"]:
            right.plot(group["tokens_per_param"], np.abs(m["slope"]), "o-", markersize=3, label=m["curve"])
    if analysis.scale and not any(m["identified"] for g in analysis.scale for m in g["models"]):
        left.text(0.5, 0.5, "no identified limit A0 (see the coefficient table)", ha="center", transform=left.transAxes)
    if not analysis.scale:
        _note(left, "needs models of two or more sizes at a similar width-depth ratio")
        _note(right, "needs models of two or more sizes at a similar width-depth ratio")
    else:
        left.set(xscale="log", xlabel="non-embedding parameters N", ylabel="limit activation ratio A0", ylim=(0, 1))
        right.set(xscale="log", xlabel="tokens per parameter", ylabel="|dA/dD| (per billion tokens)")
        slopes = np.abs([s for g in analysis.scale for m in g["models"] for s in m["slope"]], dtype=float)
        if np.any(np.isfinite(slopes) & (slopes > 0)):
            right.set_yscale("log")
        _legend(left, 7)
        _legend(right, 7)
    tpp = analysis.scale[0]["tokens_per_param"] if analysis.scale else []
    return _finish(fig, out, "4_scale", "Limit activation ratio across scales and convergence speed",
                   "Left: A0 by model size (identified limits only). Right: |dA/dD| of the fitted laws at equal tokens "
                   "per parameter (blank outside each model's measured tokens).",
                   ["activation", "cell", "n_params", "limit", "limit_low", "limit_high",
                    *[f"slope_at_tpp_{t:.3g}" for t in tpp]], rows)


def frequency_figure(details: list[dict], out: Path) -> Figure:
    fig, axes = plt.subplots(1, max(1, len(details)), figsize=(4.5 * max(1, len(details)), 3.6), squeeze=False)
    rows, bins = [], np.linspace(0, 1, 21)
    for ax, d in zip(axes[0], details):
        layers = d["neuron_frequency"] or []
        cmap = plt.get_cmap("viridis")
        for i, freq in enumerate(layers):
            hist, edges = np.histogram(freq, bins=bins)
            share = hist / max(1, len(freq))
            ax.plot((edges[:-1] + edges[1:]) / 2, share, color=cmap(i / max(1, len(layers) - 1)), label=f"layer {i}")
            rows += [[d["cell"], i, lo, hi, s] for lo, hi, s in zip(edges[:-1], edges[1:], share)]
        ax.set(xlabel="activation frequency", ylabel="share of neurons", title=d["cell"])
        ax.title.set_fontsize(8)
        _legend(ax, 6)
    if not details:
        _note(axes[0][0], "no measured checkpoint")
    return _finish(fig, out, "5a_frequency", "Activation frequency distribution per layer across scales",
                   "Share of neurons by the fraction of tokens they are active on (PPL-p% thresholds), per layer.",
                   ["cell", "layer", "freq_low", "freq_high", "share_of_neurons"], rows)


def token_scatter_figure(pair: tuple[dict, dict] | None, out: Path) -> Figure:
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    rows: list[list] = []
    if pair is None:
        _note(ax, "needs two model sizes (or two models) measured on the same tokens")
        title = "Per-token activation ratio between two scales"
    else:
        a, b = pair
        x, y = a["token_detail"]["token_ratio"], b["token_detail"]["token_ratio"]
        n = min(len(x), len(y))
        ax.scatter(x[:n], y[:n], s=6, alpha=0.6)
        top = max(max(x[:n], default=0), max(y[:n], default=0), 1e-6)
        ax.plot([0, top], [0, top], "k--", lw=1, label="y = x")
        ax.set(xlabel=f"{a['cell']}", ylabel=f"{b['cell']}")
        _legend(ax, 8)
        tokens = a["token_detail"]["tokens"]
        rows = [[i, tokens[i], x[i], y[i]] for i in range(n)]
        title = "Per-token activation ratio between two scales"
    return _finish(fig, out, "5b_token_scatter", title,
                   "Each point is one validation token: its activation ratio (mean over layers) in two models.",
                   ["position", "token", "ratio_model_a", "ratio_model_b"], rows)


def dead_figure(analysis, out: Path) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = []
    for cell in analysis.cells:
        if cell.dead:
            t, v = np.array(cell.dead, float).T
            ax.plot(t, v, "o-", markersize=3, label=cell.name)
            rows += [[cell.name, int(x), y] for x, y in cell.dead]
    ax.set(xlabel="training tokens", ylabel="dead-neuron ratio (active on < 0.1% of tokens)")
    if rows:
        ax.set_xscale("log")
    _legend(ax, 7)
    return _finish(fig, out, "6_dead_neurons", "Dead-neuron ratio versus training tokens",
                   "Share of FFN neurons active on fewer than 0.1% of validation tokens, per checkpoint.",
                   ["cell", "tokens", "dead_neuron_ratio"], rows)
