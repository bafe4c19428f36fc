"""``sparsinglaw`` command line: a thin layer over the Python API.

Each subcommand lives in its own module under ``sparsinglaw.cli`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable taking the parsed namespace and returning an exit code.
Errors the user can fix (``SparsingLawError``) print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sparsinglaw.errors import SparsingLawError

# Subcommand modules, in the order they appear in ``--help``.
SUBCOMMANDS = (
    "demo", "measure", "pareto", "fit", "widthdepth", "train", "track", "study", "report", "eval", "export", "speed",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsinglaw",
        description="Measure, predict and exploit activation sparsity in decoder-only LLMs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"sparsinglaw.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"sparsinglaw.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SparsingLawError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: partial results already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
