"""``sparsinglaw report RUN_OR_STUDY_DIR [--out DIR]``: the HTML report of a study or a training run.

Writes ``index.html`` (figures embedded, opens offline), each figure as PNG with its data as CSV, and
``analysis.json`` (fits, width-depth and scale analyses, agreement with the paper) into ``--out``
(default ``RUN_OR_STUDY_DIR/report``).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report (figures, fitted laws) of a study or training run",
        description="Fit the laws on what a study or run measured and write a self-contained HTML report.",
    )
    parser.add_argument("path", help="a study directory (study.toml) or a tracked training run directory")
    parser.add_argument("--out", default=None, help="output directory (default: PATH/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.report.html import write_report

    path = write_report(args.path, args.out)
    print(f"report: {path}")
    return 0
