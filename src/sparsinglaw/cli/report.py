"""``sparsinglaw report RUN_OR_STUDY_DIR [--analyze] [--out DIR]``: the HTML report of a study or a training run.

The report only renders the analysis files in the directory (``fits.json``, ``comparison.json``,
``paper.json``, ``setup.json``, ``probes.json``; ``sparsinglaw.layout``): it loads no model and fits
nothing. ``sparsinglaw study`` writes them; ``--analyze`` writes them first (fits the laws, compares them
with the paper, probes the last checkpoints, which loads the models), for a bare tracked training run or
a study from before these files. Writes ``index.html`` (figures embedded, opens offline), each figure as
PNG with its data as CSV, and ``analysis.json`` into ``--out`` (default ``RUN_OR_STUDY_DIR/report``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report (figures, fitted laws) of a study or training run",
        description="Render the HTML report of a study or tracked training run from its analysis files "
                    "(--analyze writes them first: fits the laws and probes the last checkpoints).",
    )
    parser.add_argument("path", help="a study directory (study.toml) or a tracked training run directory")
    parser.add_argument("--analyze", action="store_true",
                        help="first fit the laws, compare with the paper and probe the last checkpoints, "
                             "writing the analysis files into PATH (loads the models)")
    parser.add_argument("--out", default=None, help="output directory (default: PATH/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.outputs import check_writable, save_dir_with_fallback
    from sparsinglaw.report.html import write_report

    target = Path(args.out) if args.out else Path(args.path) / "report"
    if args.out or Path(args.path).is_dir():  # a missing PATH is reported by write_report itself
        check_writable(target, "dir", option="--out" if args.out else "the report directory")
    if args.analyze:
        from sparsinglaw.study.stages import write_analysis

        write_analysis(args.path)
        print(f"analysis: written into {args.path}")
    written: list = []
    _, moved = save_dir_with_fallback(lambda out: written.append(write_report(args.path, out)), target, "report")
    print(f"report: {written[-1]}")
    return int(moved)
