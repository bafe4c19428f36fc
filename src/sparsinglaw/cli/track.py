"""``sparsinglaw track RUN_DIR``: measure sparsity at every checkpoint of a finished or running training run.

Checkpoints already measured are skipped (PPL-p% mode); incomplete or unreadable ones are reported and
skipped. Results go to ``RUN_DIR/results.sqlite``; ``--output`` also writes them as CSV or JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_output_arg,
    key_value_table,
    print_json,
    print_note,
    print_table,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "track", help="measure sparsity across a training run's checkpoints",
        description="Measure PPL-p%% (per checkpoint) or one calibrated CETT (fitted on the last K checkpoints) "
                    "on every complete checkpoint of RUN_DIR, on the run's validation split.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dir", help="a directory written by `sparsinglaw train`")
    parser.add_argument("--mode", default="pplp", choices=["pplp", "cett-calibrated"],
                        help="PPL-p%% solved per checkpoint, or one CETT calibrated on the last K checkpoints")
    parser.add_argument("--p", type=float, default=1.0, help="allowed perplexity increase in percent")
    parser.add_argument("--calibrate-last", type=int, default=5, help="K for --mode cett-calibrated")
    parser.add_argument("--max-tokens", type=int, default=16_384, help="validation tokens per measurement")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    parser.add_argument("--cold-start", action="store_true",
                        help="start every PPL-p%% search at the default CETT instead of the nearest measured "
                             "checkpoint's solution")
    add_output_arg(parser, "also write all results of the run to this .csv or .json file", old=("--export",))
    add_json_arg(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsinglaw.errors import ConfigError
    from sparsinglaw.outputs import check_writable, save_with_fallback
    from sparsinglaw.store import ResultsStore
    from sparsinglaw.train.track import TrackSettings, track

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.output:
        check_writable(args.output, "file", option="--output")
    settings = TrackSettings(p=args.p, mode=args.mode, calibrate_last=args.calibrate_last,
                             max_tokens=args.max_tokens, batch_size=args.batch_size,
                             warm_start=not args.cold_start)
    summary = track(args.run_dir, settings)
    store = ResultsStore(args.run_dir)
    rows = store.measurements(metric=args.mode, setting=settings.setting())
    print_table(args, measurements_table(rows, summary))
    moved = False
    if args.output:
        write = store.export_csv if Path(args.output).suffix == ".csv" else store.export_json
        written, moved = save_with_fallback(write, args.output, "export")
        print_note(args, f"wrote {written}")
    print_json(args, {"summary": summary, "measurements": rows})
    return int(moved)


def measurements_table(rows: list[dict], summary: dict) -> str:
    """One line per checkpoint measured, then the tracking summary's counts and values (its nested details,
    such as the calibration, are in --json)."""
    lines = [f"{'checkpoint':<20} {'tokens':>14} {'activation ratio':>16}"]
    lines += [f"{row['checkpoint']:<20} {row['tokens']:>14,} {row['activation_ratio']:>16.4f}" for row in rows]
    lines.append(key_value_table(summary))
    return "\n".join(lines)
