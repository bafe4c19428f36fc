"""``sparsinglaw pareto``: each metric over a range of its setting, (activation ratio, PPL ratio) points."""

from __future__ import annotations

import argparse

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_data_args,
    add_json_arg,
    add_model_args,
    add_output_arg,
    aligned_table,
    check_new_output,
    glossary,
    load_model_and_data,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.cli.output_paths import save_with_fallback
from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.progress import partial_results
from sparsinglaw.provenance import stamp
from sparsinglaw.tables import ONE_PASS


def register(sub) -> None:
    parser = sub.add_parser("pareto", help="sweep Top-k, FAT, CETT and zero count: PPL vs activation ratio",
                            formatter_class=HelpFormatter,
                            description="Sweeps each metric's settings and plots PPL ratio against activation ratio, with the PPL-p% target line.\n" + glossary("activation ratio", "CETT", "PPL-p%"))
    add_model_args(parser)
    add_data_args(parser)
    parser.add_argument("--metrics", default="topk,fat,cett,zero", help="comma-separated metrics to sweep")
    parser.add_argument("--values", action="append", default=[], metavar="METRIC=V1,V2,...",
                        help="settings for one metric (repeatable), e.g. cett=0.05,0.1,0.2")
    add_output_arg(parser, "JSON of the points", default="pareto.json")
    parser.add_argument("--plot", default="pareto.png", help="PNG plot of the points")
    parser.add_argument("--p", type=float, default=1.0,
                        help="PPL-p%% target drawn on the plot as a line (the PPL-ratio axis is zoomed around it)")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def parse_values(metrics: str, overrides: list[str]) -> dict[str, list[float]]:
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    from sparsinglaw.measure import default_sweep

    values = default_sweep(names)
    for item in overrides:
        name, _, listed = item.partition("=")
        if name not in values:
            raise ConfigError(f"--values names {name!r}, which is not in --metrics ({','.join(names)})")
        try:
            values[name] = [float(v) for v in listed.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--values {item!r}: settings must be numbers, e.g. cett=0.05,0.1") from None
    return values


def run(args: argparse.Namespace) -> int:
    values = parse_values(args.metrics, args.values)
    if not 0 < args.p <= 100:
        raise ConfigError(f"--p must be in (0, 100] (percent of perplexity increase), got {args.p}")
    from sparsinglaw.measure import MeasureConfig, sweep

    config = MeasureConfig(metric="cett", batch_size=args.batch_size)
    check_new_output(args, args.output)
    if args.plot:
        check_new_output(args, args.plot, "--plot")
    model, _, data = load_model_and_data(args)
    def document(points: list[dict]) -> dict:
        return {"model": args.model, "data": data.source, "n_tokens": data.n_tokens, "points": points,
                "provenance": stamp({"values": values})}

    def keep(points: list[dict]) -> None:  # each finished point on disk at once: Ctrl-C loses none
        atomic_write_json(args.output, document(points))
        partial_results.kept("pareto", f"{len(points)} finished point(s) in {args.output}")

    partial_results.track()
    points = sweep(model, data, values, config, progress=not getattr(args, "quiet", False), on_point=keep)
    print_table(args, points_table(points))
    doc = document(points)
    written, moved = save_with_fallback(lambda path: atomic_write_json(path, doc), args.output, "points")
    print_note(args, f"wrote {written}")
    if args.plot:
        from sparsinglaw.report.figures import pareto_plot

        title = plot_title(args.model, data.source, data.n_tokens)
        written, moved_plot = save_with_fallback(lambda path: pareto_plot(points, path, title=title, p=args.p),
                                                 args.plot, "plot")
        moved |= moved_plot
        print_note(args, f"wrote {written}")
    print_json(args, doc)
    return int(moved)


def plot_title(model: str, source: str, n_tokens: int) -> str:
    """'SmolLM2-135M-Instruct.Q4_1.gguf on my.txt (4,096 tokens)': file names, not paths (a hub id stays whole)."""
    from pathlib import Path

    def name(text: str) -> str:
        return Path(text).name if Path(text).exists() else text

    data = "the built-in corpus" if source == "builtin" else name(source)
    return f"{name(model)} on {data} ({n_tokens:,} tokens): PPL ratio vs activation ratio"


def points_table(points: list[dict]) -> str:
    """One row per point: the setting as given, its activation and PPL ratios (one pass each, so no interval;
    ``measure --metric pplp`` resamples its passes and gives one)."""
    body = [[p["metric"], "-" if p["value"] is None else f"{p['value']:.4g}", f"{p['activation_ratio']:.4f}",
             f"{p['ppl_ratio']:.4f}"] for p in points]
    note = f"{ONE_PASS} per point (measure --metric pplp resamples its passes for an interval)"
    return aligned_table(["metric", "setting", "act.ratio", "PPL ratio"], body) + "\n" + note
