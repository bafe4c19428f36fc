"""``sparsinglaw widthdepth``: bottleneck and loss-optimal width-depth ratio (docs/paper.md section 4).

Input: a CSV with a ``ratio`` column (or ``hidden`` and ``layers``) and an ``a0`` (limit activation ratio)
and/or a ``loss`` column, one row per model. Example::

    sparsinglaw widthdepth sweep.csv --plot hinge.png --output widthdepth.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_output_arg,
    check_new_output,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.fileio import atomic_write_text

# sparsinglaw.laws (scipy) is imported in run(), so that --help answers at once.


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("widthdepth", help="hinge fit of A0 vs width-depth ratio; loss-optimal range",
                              description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("input", type=Path, help="CSV: ratio (or hidden, layers), a0 and/or loss")
    p.add_argument("--level", type=float, default=0.9, help="confidence level of the bottleneck interval")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap refits for the bottleneck interval")
    p.add_argument("--loss-tolerance", type=float, default=0.01,
                   help="relative loss tolerance defining the loss-optimal range (0.01: 1%%)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    add_output_arg(p, "write JSON results here", type=Path)
    add_json_arg(p)
    p.add_argument("--plot", type=Path, help="write the hinge plot (PNG) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.laws import report
    from sparsinglaw.laws.widthdepth import fit_hinge, loss_optimal_range, read_widthdepth

    if args.output:
        check_new_output(args, args.output)
    data = read_widthdepth(args.input)
    hinge = loss = None
    if "limit" in data:
        hinge = fit_hinge(data["ratio"], data["limit"], args.level, args.n_boot, args.seed)
    if "loss" in data:
        loss = loss_optimal_range(data["ratio"], data["loss"], args.loss_tolerance)
    print_table(args, report.widthdepth_lines(hinge, loss))
    if args.plot and hinge:
        from sparsinglaw.laws.plots import plot_hinge

        print_note(args, f"plot: {plot_hinge(data['ratio'], data['limit'], hinge, args.plot)}")
    doc = {"hinge": hinge.to_dict() if hinge else None, "loss_range": loss.to_dict() if loss else None}
    if args.output:
        atomic_write_text(args.output, json.dumps(doc, indent=2))
        print_note(args, f"wrote {args.output}")
    print_json(args, doc)
    return 0
