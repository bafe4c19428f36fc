"""The study report's figures: each writes ``NAME.png`` and its data as ``NAME.csv``.

Every function takes what the analysis files hold (``sparsinglaw.report.data.StudyData``, or a piece of it)
and an output directory, and returns a ``Figure`` record; nothing is fitted or measured here. A figure whose data the study lacks (e.g. one model size only) is still drawn, with a
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


def _legend(ax, size: int = 7, outside: bool = False, below: bool = False) -> None:
    """A legend where it hides no data: the emptiest corner, right of the axes with ``outside``, or under
    them with ``below``."""
    if not ax.get_legend_handles_labels()[0]:
        return
    if outside:
        ax.legend(fontsize=size, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif below:
        ax.legend(fontsize=size, loc="upper center", bbox_to_anchor=(0.5, -0.16), borderaxespad=0.0)
    else:
        ax.legend(fontsize=size, loc="best", framealpha=0.85)


def _once(seen: set[str], label: str) -> str | None:
    """``label`` the first time it is asked for, then none: one legend entry for a series drawn per model."""
    if label in seen:
        return None
    seen.add(label)
    return label


def colors(n: int) -> list:
    """n distinct colours: tab10 up to 10 series, tab20 up to 20, then evenly spaced hues."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("hsv")(i / n) for i in range(n)]


def pretrained_figure(comparison: dict | None, out: Path, zoom: tuple[float, float] = (1.0, 1.10)) -> Figure:
    """The paper's metric comparison on a real pretrained model: PPL ratio (linear, zoomed) versus activation
    ratio for Top-k, FAT-eps and CETT, the PPL-p% point marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    rows: list[list] = []
    caption = "No pretrained model configured (fit.pretrained): the metric comparison was not run."
    if comparison:
        points = comparison["points"]
        for (metric, color) in zip(dict.fromkeys(p["metric"] for p in points), colors(3)):
            mine = sorted((p for p in points if p["metric"] == metric), key=lambda p: p["activation_ratio"])
            ax.plot([p["activation_ratio"] for p in mine], [p["ppl_ratio"] for p in mine], "o-", ms=4, color=color,
                    label=METRIC_LABELS.get(metric, metric).replace(" (PPL-p%)", ""), clip_on=True)
        sol = comparison["pplp"]
        ax.plot([sol["activation_ratio"]], [sol["ppl_ratio"]], "*", ms=14, color="k", zorder=5,
                label=f"PPL-{sol['p']:g}% (CETT {sol['cett']:.3f}): A = {sol['activation_ratio']:.3f}")
        ax.axhline(1 + sol["p"] / 100, color="0.5", lw=0.8, ls="--")
        ax.set_ylim(*zoom)
        ax.set_xlim(0, 1)
        off = sum(p["ppl_ratio"] > zoom[1] for p in points)
        rows = [[p["metric"], p["value"], p["activation_ratio"], p["ppl_ratio"]] for p in points]
        rows.append(["pplp", sol["cett"], sol["activation_ratio"], sol["ppl_ratio"]])
        caption = (f"{comparison['model']} ({comparison['parameters'] / 1e6:.0f}M parameters) on {comparison['tokens']:,} "
                   f"tokens of the {comparison['text']} ({comparison['sequences']} x {comparison['seq_len']}); one "
                   f"dense pass shared by every setting. At equal PPL cost CETT keeps fewest neurons active."
                   + (f" The star is the PPL-{sol['p']:g}% answer, where the CETT trend crosses {1 + sol['p'] / 100:g}; "
                      f"its activation ratio is {sol['activation']} from the passes at CETT "
                      + " and ".join(f"{v:.3g}" for v in sol["passes"]) + "." if sol.get("activation") else "")
                   + (f" {off} setting(s) above PPL ratio {zoom[1]:.2f} lie off the axes (see the CSV)." if off else ""))
        ax.set_title(f"Sparsity metrics on {comparison['model'].split('.')[0]}, {comparison['tokens']:,} tokens of "
                     f"the {comparison['text']}", fontsize=9)
    else:
        _note(ax, "no pretrained model configured: the metric comparison was not run")
    ax.set(xlabel="activation ratio", ylabel="PPL ratio (sparse / dense)")
    ax.grid(alpha=0.3)
    _legend(ax, 8, outside=True)
    return _finish(fig, out, "1_metrics_pretrained", "PPL ratio versus activation ratio on a pretrained model",
                   caption, ["metric", "setting", "activation_ratio", "ppl_ratio"], rows)


def paper_figure(paper: list[dict], analysis, out: Path) -> Figure:
    """The paper's published curves and fits (left: ReLU, middle: SiLU; ``paper``: the curves of
    ``paper.json``, each fit sampled by the analysis stage) beside this study's (right)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    fig.subplots_adjust(wspace=0.3)  # room for each panel's y label beside the previous panel's ticks
    rows: list[list] = []
    for ax, act in zip(axes[:2], ("relu", "silu")):
        mine = [r for r in paper if r["activation"] == act]
        for r, color in zip(mine, colors(len(mine))):
            t = np.array(r["tokens"])
            ax.plot(t, r["ratio"], "o", ms=2.5, color=color, label=r["name"].split("_")[0].upper())
            if r.get("fit_curve"):
                ax.plot(r["fit_curve"]["tokens"], r["fit_curve"]["ratio"], "-", lw=1, color=color)
            rows += [[r["name"], "published points", x, y] for x, y in zip(r["tokens"], r["ratio"])]
        ax.set(xscale="log", xlabel="training tokens", ylabel="activation ratio (PPL-1%)",
               title=f"paper, {act.upper() if act == 'relu' else 'SiLU'}: points and published fits")
        ax.title.set_fontsize(9)
        if not mine:
            _note(ax, "the paper's curves are not available here")
        _legend(ax, 7)
    ax = axes[2]
    live = [c for c in analysis.cells if c.points]
    for cell, color in zip(live, colors(len(live))):
        t, a = np.array(cell.points, float).T
        ax.plot(t, a, "o-", ms=3, lw=1, color=color, label=cell.name)
        rows += [[cell.name, "this study", x, y] for x, y in cell.points]
    ax.set(xscale="log", xlabel="training tokens", ylabel="activation ratio (tracked)", ylim=(0, None),
           title="this study: tracked activation ratio")
    ax.title.set_fontsize(9)
    _legend(ax, 7)
    return _finish(fig, out, "0_paper_beside_live", "The paper's curves and fits beside this study's",
                   "Left, middle: the paper's measured PPL-1% activation ratios (0.1B-2.4B models, 10-40B tokens) "
                   "with their published fits (docs/paper.md section 3). Right: this study's tracked ratios, on its "
                   "own token axis (a millionth of the paper's): the shapes (ReLU low and falling, SiLU rising "
                   "toward ~0.4) are what is compared, not the values.",
                   ["curve", "series", "tokens", "activation_ratio"], rows)


def _finish(fig, out: Path, name: str, title: str, caption: str, header: list[str], rows: list[list]) -> Figure:
    png = _save(fig, out / f"{name}.png")
    return Figure(name, title, caption, png, write_csv(out / f"{name}.csv", header, rows))


def pareto_figure(points: list[dict], cell: str, checkpoint: str, out: Path,
                  zoom: tuple[float, float] = (1.0, 1.10)) -> Figure:
    """The metric comparison on one of the study's models (when no pretrained model is configured)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for metric, color in zip(dict.fromkeys(p["metric"] for p in points), colors(3)):
        mine = sorted((p for p in points if p["metric"] == metric), key=lambda p: p["activation_ratio"])
        ax.plot([p["activation_ratio"] for p in mine], [p["ppl_ratio"] for p in mine], "o-", markersize=4,
                color=color, label=METRIC_LABELS.get(metric, metric))
    ax.set_xlabel("activation ratio")
    ax.set_ylabel("PPL ratio (sparse / dense)")
    ax.set_ylim(*zoom)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    _legend(ax, 8, outside=True)
    ax.set_title(f"Sparsity metrics on {cell}, {checkpoint}", fontsize=9)
    off = sum(p["ppl_ratio"] > zoom[1] for p in points)
    rows = [[p["metric"], p["value"], p["activation_ratio"], p["ppl_ratio"]] for p in points]
    return _finish(fig, out, "1_pareto", "PPL ratio versus activation ratio",
                   f"Top-k, FAT-ε and CETT (the PPL-p% family) on {cell}, {checkpoint}."
                   + (f" {off} setting(s) above PPL ratio {zoom[1]:.2f} lie off the axes (see the CSV)." if off else ""),
                   ["metric", "setting", "activation_ratio", "ppl_ratio"], rows)


def _cell_series(ax, cell, color, level: float, rows: list) -> None:
    """One cell's tracked points with their per-checkpoint intervals (when recorded)."""
    t, a = np.array(cell.points, float).T
    ivs = [cell.intervals.get(int(x)) for x in t]
    if all(iv is not None for iv in ivs):
        err = np.clip([[y - iv[0] for y, iv in zip(a, ivs)], [iv[1] - y for y, iv in zip(a, ivs)]], 0, None)
        ax.errorbar(t, a, yerr=err, fmt="o", ms=3, capsize=2, lw=0.8, color=color,
                    label=f"{cell.name} ({cell.interval_level or level:.0%} interval per checkpoint)")
    else:
        ax.plot(t, a, "o", ms=3, color=color, label=cell.name)
    rows += [[cell.name, "measured", x, y, *(iv or (None, None))] for x, y, iv in zip(t, a, ivs)]


def curves_figure(analysis, out: Path, quantity: str = "activation ratio",
                  name: str = "2_activation_vs_tokens") -> Figure:
    """Each model's tracked ``quantity`` against training tokens with its fitted law (the input-sparsity
    section draws the kept input share with it, under another ``name``)."""
    acts = list(dict.fromkeys(c.activation for c in analysis.cells))
    fig, axes = plt.subplots(1, len(acts), figsize=(6.5 * len(acts), 4.2), squeeze=False)
    rows, level = [], analysis.level
    palette = dict(zip([c.name for c in analysis.cells], colors(len(analysis.cells))))
    for ax, act in zip(axes[0], acts):
        cells = [c for c in analysis.cells if c.activation == act and c.points]
        labelled: set[str] = set()  # the law and its band are named once per panel, in each cell's colour
        for cell in cells:
            color = palette[cell.name]
            _cell_series(ax, cell, color, level, rows)
            fit = analysis.fits.get(cell.name)
            if fit is None:
                continue
            if fit.misfit:  # flagged, never drawn as the law (laws.solver.misfit)
                ax.plot([], [], " ", label=f"{cell.name}: {fit.law} law not drawn (it does not follow its points)")
                rows.append([cell.name, f"{fit.law} law not drawn", None, None, None, None])
                continue
            grid, pred = np.array(fit.curve["tokens"], float), np.array(fit.curve["ratio"], float)
            band = None if fit.curve.get("low") is None else (np.array(fit.curve["low"], float),
                                                               np.array(fit.curve["high"], float))
            ax.plot(grid, pred, color=color, lw=1.2, label=_once(labelled, f"{fit.law} law fit (each model's colour)"))
            if band is not None:  # fill_between clips to the axes; the CSV keeps the unclipped values
                ax.fill_between(grid, *band, color=color, alpha=0.18, lw=0,
                                label=_once(labelled, f"{level:.0%} bootstrap band"))
            lo, hi = band if band is not None else (pred * np.nan, pred * np.nan)
            rows += [[cell.name, f"{fit.law} law", g, p, lo_, hi_] for g, p, lo_, hi_ in zip(grid, pred, lo, hi)]
        if ax.has_data():
            ax.set_xscale("log")
            vals = [v for c in analysis.cells if c.activation == act for _, v in c.points]
            ivs = [x for c in analysis.cells if c.activation == act for iv in c.intervals.values() for x in iv]
            lo, hi = min(vals + ivs), max(vals + ivs)
            pad = max(0.02, 0.15 * (hi - lo))
            ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
        ax.set_xlabel("training tokens")
        ax.set_ylabel(f"{quantity} (tracked)")
        ax.set_title({"relu": "ReLU", "silu": "SiLU"}.get(act, act))
        _legend(ax, 7, below=len(cells) > 2)  # a study's many models: the legend would cover their points
    return _finish(fig, out, name, f"{quantity[0].upper()}{quantity[1:]} versus training tokens",
                   f"Each model's tracked {quantity} at every checkpoint (bars: its {level:.0%} interval from "
                   f"resampling validation sequences, where recorded) with the paper's law fitted after warmup and "
                   f"its {level:.0%} bootstrap band (clipped to the axes), one panel per activation.",
                   ["cell", "series", "tokens", "activation_ratio", "low", "high"], rows)


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
        if hinge and ok:  # drawn over the ratios of the limits it was fitted to
            grid = np.geomspace(min(r), max(r), 100)
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
    fig, axes = plt.subplots(1, max(1, len(details)), figsize=(5.2 * max(1, len(details)), 3.6), squeeze=False,
                             layout="constrained")
    rows, bins = [], np.linspace(0, 1, 21)
    for ax, d in zip(axes[0], details):
        layers = d["neuron_frequency"] or []
        # One colour per layer from a discrete map, so the colour bar reads as layer numbers.
        cmap = plt.get_cmap("viridis", max(2, len(layers)))
        norm = matplotlib.colors.BoundaryNorm(np.arange(-0.5, max(2, len(layers)) + 0.5), cmap.N)
        for i, freq in enumerate(layers):
            hist, edges = np.histogram(freq, bins=bins)
            share = hist / max(1, len(freq))
            ax.plot((edges[:-1] + edges[1:]) / 2, share, color=cmap(norm(i)))
            rows += [[d["cell"], i, lo, hi, s] for lo, hi, s in zip(edges[:-1], edges[1:], share)]
        ax.set(xlabel="activation frequency", ylabel="share of neurons", title=d["cell"])
        ax.title.set_fontsize(8)
        if layers:
            bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                               ticks=range(0, len(layers), max(1, len(layers) // 8)))
            bar.set_label("layer (0: first)", fontsize=8)
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


def _series_with_bars(ax, points, intervals: dict, style: str, color, label: str) -> None:
    t, v = np.array(points, float).T
    ivs = [intervals.get(int(x)) for x in t]
    if ivs and all(iv is not None for iv in ivs):
        err = np.clip([[y - iv[0] for y, iv in zip(v, ivs)], [iv[1] - y for y, iv in zip(v, ivs)]], 0, None)
        ax.errorbar(t, v, yerr=err, fmt=style, ms=3, capsize=2, lw=0.8, color=color, label=label)
    else:
        ax.plot(t, v, style, ms=3, lw=0.8, color=color, label=label)


def dead_figure(analysis, out: Path) -> Figure:
    """Dead neurons and live ones side by side: the overall activation ratio mixes neurons dying or reviving
    with live neurons specialising (A = (1 - dead) x live), so each is drawn on its own."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    rows: list[list] = []
    cells = [c for c in analysis.cells if c.dead]
    for cell, color in zip(cells, colors(len(cells))):
        _series_with_bars(left, cell.dead, cell.dead_intervals, "o-", color, f"{cell.name}: dead")
        rows += [[cell.name, "dead", t, v, *cell.dead_intervals.get(t, (None, None))] for t, v in cell.dead]
        if cell.never_active and cell.activation in ("relu", "relu2"):
            t, v = np.array(cell.never_active, float).T
            left.plot(t, v, "x:", ms=4, lw=0.8, color=color, label=f"{cell.name}: gate never positive")
            rows += [[cell.name, "never active", t_, v_, None, None] for t_, v_ in cell.never_active]
        if cell.live:
            _series_with_bars(right, cell.live, cell.live_intervals, "o-", color, f"{cell.name}: live neurons")
            rows += [[cell.name, "live", t, v, *cell.live_intervals.get(t, (None, None))] for t, v in cell.live]
        t, a = np.array(cell.points, float).T
        right.plot(t, a, ":", lw=1, color=color, label=f"{cell.name}: all neurons")
    left.set(xlabel="training tokens", ylabel="dead-neuron ratio (active on < 0.1% of tokens)",
             title="dead neurons")
    right.set(xlabel="training tokens", ylabel="activation ratio (tracked)", title="activation ratio over live neurons")
    for ax in (left, right):
        if ax.has_data():
            ax.set_xscale("log")
        ax.title.set_fontsize(9)
        _legend(ax, 6)
    if not any(c.live for c in cells):
        _note(right, "tracked before live-neuron ratios were recorded: run `sparsinglaw track` again")
    return _finish(fig, out, "6_dead_neurons", "Dead and live neurons versus training tokens",
                   "Left: the share of FFN neurons active on fewer than 0.1% of validation tokens under the tracked "
                   "thresholds (bars: its interval from resampling validation sequences), and for ReLU the share "
                   "whose gate pre-activation is never positive (dead whatever the threshold). Right: the activation "
                   "ratio over live neurons (solid) beside the overall one (dotted): the overall ratio is (1 - dead) x "
                   "live, so a falling overall ratio can come from neurons dying, or rising live ones be hidden by "
                   "neurons reviving.", ["cell", "series", "tokens", "value", "low", "high"], rows)
