"""``sparsinglaw pareto``: each metric over a range of its setting, (activation ratio, PPL ratio) points."""

from __future__ import annotations

import argparse

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_data_args,
    add_json_arg,
    add_model_args,
    add_output_arg,
    load_model_and_data,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.outputs import check_writable, save_with_fallback
from sparsinglaw.progress import partial_results
from sparsinglaw.provenance import stamp


def register(sub) -> None:
    parser = sub.add_parser("pareto", help="sweep Top-k, FAT, CETT and zero count: PPL vs activation ratio",
                            formatter_class=HelpFormatter)
    add_model_args(parser)
    add_data_args(parser)
    parser.add_argument("--metrics", default="topk,fat,cett,zero", help="comma-separated metrics to sweep")
    parser.add_argument("--values", action="append", default=[], metavar="METRIC=V1,V2,...",
                        help="settings for one metric (repeatable), e.g. cett=0.05,0.1,0.2")
    add_output_arg(parser, "JSON of the points", default="pareto.json")
    parser.add_argument("--plot", default="pareto.png", help="PNG plot of the points")
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
    from sparsinglaw.measure import MeasureConfig, sweep

    config = MeasureConfig(metric="cett", batch_size=args.batch_size)
    check_writable(args.output, "file", option="--output")
    if args.plot:
        check_writable(args.plot, "file", option="--plot")
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

        title = f"{args.model}: PPL ratio vs activation ratio"
        written, moved_plot = save_with_fallback(lambda path: pareto_plot(points, path, title=title), args.plot,
                                                 "plot")
        moved |= moved_plot
        print_note(args, f"wrote {written}")
    print_json(args, doc)
    return int(moved)


def points_table(points: list[dict]) -> str:
    lines = [f"{'metric':<8} {'setting':>10} {'act.ratio':>10} {'PPL ratio':>10}"]
    for p in points:
        value = "-" if p["value"] is None else f"{p['value']:.4g}"
        lines.append(f"{p['metric']:<8} {value:>10} {p['activation_ratio']:>10.4f} {p['ppl_ratio']:>10.4f}")
    return "\n".join(lines)
