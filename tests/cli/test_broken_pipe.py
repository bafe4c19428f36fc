"""A reader that closes the CLI's stdout early (``sparsinglaw ... | head -1``) ends the command quietly."""

from __future__ import annotations

import subprocess
import sys

from sparsinglaw.cli import BROKEN_PIPE_EXIT

# A subcommand that prints far more than a pipe holds (64 KiB), so that it is still writing, blocked, when
# the reader closes the pipe: the next write fails with EPIPE every time, not only when the timing is bad.
FLOOD_PROBE = """
import sys, types
from sparsinglaw import cli

def run(args):
    for i in range(200_000):
        print(f"line {i}")
    return 0

def register(sub):
    sub.add_parser("flood").set_defaults(func=run)

module = types.ModuleType("sparsinglaw.cli.flood")
module.register = register
sys.modules["sparsinglaw.cli.flood"] = module
cli.COMMANDS["flood"] = "print many lines"
cli.SUBCOMMANDS = tuple(cli.COMMANDS)
sys.exit(cli.main(["flood"]))
"""


def _read_one_line_then_close(command: list[str]) -> tuple[str, int, str]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.stderr.close()
    return first, proc.wait(timeout=120), stderr


def test_closing_the_pipe_early_leaves_no_traceback():
    first, code, stderr = _read_one_line_then_close([sys.executable, "-c", FLOOD_PROBE])
    assert first == "line 0\n"
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
    assert stderr.strip() == ""
    assert code == BROKEN_PIPE_EXIT


def test_a_real_command_piped_into_head_is_quiet():
    """The console entry point, a real command: whether or not the pipe closes before it has written all,
    no traceback reaches stderr."""
    first, code, stderr = _read_one_line_then_close([sys.executable, "-m", "sparsinglaw", "--help"])
    assert first.startswith("usage: sparsinglaw")
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert code in (0, BROKEN_PIPE_EXIT)
