"""``sparsinglaw report RUN_OR_STUDY_DIR [--analyze] [--output DIR] [--json]``: the HTML report of a study or a
training run.

It only renders the analysis files (``sparsinglaw.store.layout``), which ``sparsinglaw study`` writes, or
``--analyze`` first (fits, comparison, probes: loads the models). Writes ``index.html``, each figure as PNG
and CSV, and ``analysis.json`` into ``--output`` (default ``RUN_OR_STUDY_DIR/report``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sparsinglaw.cli.common import HelpFormatter, add_json_arg, add_output_arg, print_json, print_note


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report (figures, fitted laws) of a study or training run",
        description="Render the HTML report of a study or tracked training run from its analysis files "
                    "(--analyze writes them first: fits the laws and probes the last checkpoints).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("path", help="a study directory (study.toml) or a tracked training run directory")
    parser.add_argument("--analyze", action="store_true",
                        help="first fit the laws, compare with the paper and probe the last checkpoints, "
                             "writing the analysis files into PATH (loads the models)")
    add_output_arg(parser, "output directory (default: PATH/report); re-rendered in place: the report only renders "
                           "the analysis files kept in PATH", old=("--out",), overwrite=None)
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.cli.output_paths import save_dir_with_fallback
    from sparsinglaw.report.html import write_report

    target = Path(args.output) if args.output else Path(args.path) / "report"
    if args.analyze and Path(args.path).is_dir():
        _check_analyze_writable(args.path)
    if args.output or Path(args.path).is_dir():  # a missing PATH is reported by write_report itself
        _check_output(target, args)
    written: dict = {}
    if args.analyze:
        written["analysis"] = _analyze(args.path)
        print_note(args, f"analysis: written into {args.path}")
    started = int(time.time())  # whole seconds: file times on some file systems are no finer
    pages: list = []
    out_dir, moved = save_dir_with_fallback(lambda out: pages.append(write_report(args.path, out)), target, "report")
    print_note(args, f"report: {pages[-1]}")
    print_json(args, {"report": str(pages[-1]), "directory": str(out_dir), "files": _written_since(out_dir, started),
                      **written, "moved": moved})
    return int(moved)


def _check_output(target: Path, args: argparse.Namespace) -> None:
    """The report directory can be written; the default one (inside PATH) says how to write elsewhere."""
    from sparsinglaw.cli.output_paths import OutputPathError, check_writable

    try:
        check_writable(target, "dir", option="--output" if args.output else "the report directory")
    except OutputPathError as err:
        if args.output:
            raise
        raise OutputPathError(f"{err}; write the report elsewhere with --output DIR") from None


def _check_analyze_writable(path: str) -> None:
    """--analyze writes its files into PATH: a read-only PATH (an archive) is one line saying what to do."""
    from sparsinglaw.cli.output_paths import OutputPathError, check_writable

    try:
        check_writable(path, "dir", option="--analyze")
    except OutputPathError:
        raise OutputPathError(f"--analyze writes the analysis files into {path}, which cannot be written; copy it "
                              f"(cp -r {path} COPY) and run report COPY --analyze, or drop --analyze to render "
                              "the analysis files it holds") from None


def _analyze(path: str) -> list[str]:
    """Write the analysis files into ``path``; the paths of those it holds afterwards."""
    from sparsinglaw.store.layout import ANALYSIS_FILES
    from sparsinglaw.study.stages import write_analysis

    write_analysis(path)
    return [str(Path(path) / name) for name in ANALYSIS_FILES if (Path(path) / name).is_file()]


def _written_since(directory: Path, started: int) -> list[str]:
    """The files under ``directory`` written since ``started`` (the page, its figures' PNG and CSV files and
    ``analysis.json``; files an older report left there and this one did not rewrite are not listed)."""
    files = (p for p in sorted(Path(directory).rglob("*")) if p.is_file())
    return [str(p) for p in files if p.stat().st_mtime >= started]
