"""``sparsinglaw`` command line: a thin layer over the Python API.

Each subcommand module exposes ``register(subparsers)``; only the one being run is imported (``--help`` and
``--version`` import none). Errors the user can fix print one line and exit non-zero."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from sparsinglaw.cli.common import HelpFormatter, glossary
from sparsinglaw.errors import SparsingLawError

# Subcommand modules and their one-line help, in the order they appear in ``--help``.
COMMANDS = {
    "demo": "run the main job: a ReLU/SiLU study and the metric comparison (minutes)",
    "measure": "measure activation sparsity (Top-k, FAT, CETT, PPL-p%%, zeros)",
    "pareto": "sweep Top-k, FAT, CETT and zero count: PPL vs activation ratio",
    "inputs": "input sparsity of every projection: kept shares, bytes per token, PPL-p%%",
    "fit": "fit activation-vs-tokens laws with uncertainty",
    "widthdepth": "hinge fit of A0 vs width-depth ratio; loss-optimal range",
    "data": "tokenize a corpus into memory-mapped token shards for training",
    "train": "pre-train a small LLM with a chosen activation and shape",
    "track": "measure sparsity at every checkpoint of a training run",
    "study": "run a whole study (train, track, fit, report) from one config",
    "report": "write the HTML report of a study or training run",
    "eval": "lm-eval tasks, dense vs sparsified, side by side",
    "export": "write a transformers-loadable sparsified model",
    "speed": "decode speed and FFN latency, dense vs sparse FFNs",
}
SUBCOMMANDS = tuple(COMMANDS)


def _version() -> str:
    from sparsinglaw import __version__

    return f"sparsinglaw {__version__}"


def build_parser(command: str | None = None, *, every: bool = True) -> argparse.ArgumentParser:
    """The parser; ``command``'s module is imported and registers its full parser, the others are listed
    by name and help only. Without a command, ``every`` registers every module (tests, documentation);
    ``main`` passes ``every=False`` so that ``--help`` and ``--version`` import none."""
    parser = argparse.ArgumentParser(
        prog="sparsinglaw", description="Measure, predict and exploit activation sparsity in decoder-only LLMs.",
        formatter_class=HelpFormatter, epilog=glossary(),
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if name == command or (command is None and every):
            if not _register(name, sub):
                sub.add_parser(name, help=COMMANDS[name])
        else:
            sub.add_parser(name, help=COMMANDS[name], add_help=False)
    return parser


def _register(name: str, sub) -> bool:
    try:
        module = importlib.import_module(f"sparsinglaw.cli.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"sparsinglaw.cli.{name}":
            return False  # subcommand not built yet
        raise
    module.register(sub)
    return True


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def _route_warnings() -> None:
    """Python warnings (the libraries', the native build's) go through logging as one ``WARNING:`` line, like
    this package's own, instead of the two-line file:line form on stderr."""
    import warnings

    warnings.formatwarning = lambda message, category, *rest, **kw: f"{category.__name__}: {message}"
    logging.captureWarnings(True)


def _silence_library_bars() -> None:
    """The libraries' own bars go: transformers' weight loading and hub downloads (both read the hub's
    switch when transformers is imported, later), datasets'. This package's bars (and their log lines when
    stderr is not a terminal) report the work itself."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already (main called from Python): switch its bars off
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _quiet_libraries() -> None:
    """--quiet: every progress bar and the libraries' info logs go too."""
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# Exit status when the reader of stdout went away (``| head``): what the shell reports for a program that
# SIGPIPE stopped, as ``yes | head`` does.
BROKEN_PIPE_EXIT = 141


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a reader that closes stdout early (``sparsinglaw fit ... | head -1``) ends the
    command quietly, without a BrokenPipeError traceback."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, inside the handler, rather than at exit
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE_EXIT


def _discard_stdout() -> None:
    """Point stdout at devnull, so that the flush at interpreter exit finds no closed pipe to complain about
    (the standard recipe: https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced by an object without a file (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv), every=False)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    _route_warnings()
    for note in getattr(args, "deprecations", None) or []:  # old option spellings (see cli.common)
        logging.getLogger("sparsinglaw").warning(note)
    _silence_library_bars()
    if args.quiet:
        _quiet_libraries()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SparsingLawError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        from sparsinglaw.progress import partial_results  # what the command says it kept, if it tracks that

        print(partial_results.message(), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
