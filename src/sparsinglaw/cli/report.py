"""``sparsinglaw report RUN_OR_STUDY_DIR [--out DIR]``: the HTML report of a study or a training run.

Writes ``index.html`` (figures embedded, opens offline), each figure as PNG with its data as CSV, and
``analysis.json`` (fits, width-depth and scale analyses, agreement with the paper) into ``--out``
(default ``RUN_OR_STUDY_DIR/report``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report (figures, fitted laws) of a study or training run",
        description="Fit the laws on what a study or run measured and write a self-contained HTML report.",
    )
    parser.add_argument("path", help="a study directory (study.toml) or a tracked training run directory")
    parser.add_argument("--out", default=None, help="output directory (default: PATH/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.outputs import check_writable, save_dir_with_fallback
    from sparsinglaw.report.html import write_report

    target = Path(args.out) if args.out else Path(args.path) / "report"
    if args.out or Path(args.path).is_dir():  # a missing PATH is reported by write_report itself
        check_writable(target, "dir", option="--out" if args.out else "the report directory")
    written: list = []
    _, moved = save_dir_with_fallback(lambda out: written.append(write_report(args.path, out)), target, "report")
    print(f"report: {written[-1]}")
    return int(moved)
