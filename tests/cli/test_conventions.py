"""One CLI convention across the subcommands: spellings, defaults in every help, cheap --help, --json,
deprecated spellings that still work, and progress that shows in a log file."""

from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import sys

import pytest

from sparsinglaw.cli import COMMANDS, build_parser, main
from sparsinglaw.cli.common import HelpFormatter, add_deprecated_alias, add_output_arg, key_value_table
from sparsinglaw.progress import LoggedProgress, progress_bar

HEAVY = ("scipy", "torch", "transformers")
# Old spellings that must not appear in any help (they stay accepted, hidden, with a warning).
RETIRED = {"--out", "--export", "--ci", "--bootstrap-samples", "--bootstrap-iters"}

# Runs `sparsinglaw CMD --help` as the console script does, then names the heavy libraries it imported.
HELP_PROBE = """
import sys
from sparsinglaw.cli import main
try:
    main([sys.argv[1], "--help"])
except SystemExit as stop:
    assert stop.code == 0, stop.code
print("IMPORTED", sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_imports_no_heavy_library(command):
    """Every --help answers without scipy, torch or transformers (they take seconds to import)."""
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE.format(heavy=HEAVY), command],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"usage: sparsinglaw {command}" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "IMPORTED []", proc.stdout[-500:]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_help_showing_its_default(command):
    parser = _subparsers()[command]
    formatter = parser._get_formatter()
    for action in _options(parser):
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            continue
        assert "default" in formatter._get_help_string(action), f"{command} {action.option_strings[0]}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_one_spelling_per_concept(command):
    options = {s: a for a in _options(_subparsers()[command]) for s in a.option_strings}
    assert not RETIRED & set(options), f"{command} still shows {sorted(RETIRED & set(options))}"
    if "--output" in options:
        assert options["--output"].option_strings == ["--output", "-o"]
    for concept, flag in (("level", "--level"), ("n_boot", "--n-boot"), ("output", "--output")):
        holders = [a for a in options.values() if a.dest == concept]
        assert all(flag in a.option_strings for a in holders), (command, concept)


def test_every_result_command_offers_json():
    missing = [name for name, parser in _subparsers().items()
               if "--json" not in {s for a in parser._actions for s in a.option_strings}]
    assert missing == []


def test_deprecated_spellings_set_the_new_option_and_leave_a_note():
    args = build_parser("measure").parse_args(["measure", "--model", "m", "--ci", "0.8", "--bootstrap-samples", "7"])
    assert args.level == 0.8 and args.n_boot == 7
    assert args.deprecations == ["--ci is deprecated and will be removed; use --level",
                                 "--bootstrap-samples is deprecated and will be removed; use --n-boot"]
    plain = build_parser("measure").parse_args(["measure", "--model", "m"])
    assert plain.level == 0.9 and plain.n_boot == 1000 and not hasattr(plain, "deprecations")


def test_a_deprecated_spelling_is_logged_once_on_stderr(tmp_path):
    """Through the console entry point: the warning is one log line, then the command runs as before."""
    proc = subprocess.run([sys.executable, "-m", "sparsinglaw", "track", str(tmp_path / "missing"), "--export",
                           str(tmp_path / "t.csv")], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[0] == "WARNING: --export is deprecated and will be removed; use --output"
    assert proc.returncode == 2 and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr


def test_speed_fallback_no_longer_borrows_max_tokens():
    """--max-tokens is evaluation tokens wherever it is shown; speed's fallback limits have their own names."""
    shown = [name for name, parser in _subparsers().items() if "--max-tokens" in
             {s for a in _options(parser) for s in a.option_strings}]
    assert "speed" not in shown and {"measure", "track"} <= set(shown)
    args = build_parser("speed").parse_args(["speed", "--model", "m", "--max-tokens", "3", "--max-ratio", "0.5"])
    assert (args.fallback_tokens, args.fallback_ratio) == (3, 0.5) and len(args.deprecations) == 2


def test_required_output_counts_its_old_spelling():
    parser = argparse.ArgumentParser()
    add_output_arg(parser, "where", old=("--out",), required=True)
    assert parser.parse_args(["--out", "x"]).output == "x"
    assert parser.parse_args(["-o", "y"]).output == "y"


def test_help_formatter_shows_meaningful_defaults_only():
    parser = argparse.ArgumentParser(prog="p", formatter_class=HelpFormatter, description="line one\n  line two")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--name", default="x", help="a name")
    parser.add_argument("--path", default=None, help="a path")
    parser.add_argument("--flag", action="store_true", help="a switch")
    parser.add_argument("--level", default=0.9, help="level (default 0.9, the paper's)")
    add_deprecated_alias(parser, "--old", "--name", "name")
    text = " ".join(parser.format_help().split())
    assert "seed (default: 0)" in text and "a name (default: x)" in text
    assert "a path (default" not in text and "a switch (default" not in text
    assert text.count("default") == 3  # the level's own mention, not doubled
    assert "--old" not in text
    assert "line one\n  line two" in parser.format_help()  # a description written on lines keeps them


def test_fit_json_is_the_only_stdout(capsys):
    assert main(["fit", "--paper", "0.1b_relu", "--law", "paper", "--interval", "profile", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["curves"][0]["curve"] == "0.1b_relu" and doc["curves"][0]["published"]["law"] == "relu"
    assert main(["fit", "--paper", "0.1b_relu", "--law", "paper", "--interval", "profile"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("== 0.1b_relu") and "{" not in table


def test_fit_choices_match_the_laws_package():
    """fit spells its choices out (so --help needs no scipy); they must stay those of the laws package."""
    from sparsinglaw.cli import fit
    from sparsinglaw.laws.families import LAWS
    from sparsinglaw.laws.fit import INTERVALS, RANKINGS

    assert set(fit.LAW_CHOICES) == {"auto", "paper", *LAWS.names()}
    assert fit.INTERVALS == INTERVALS and fit.RANKINGS == RANKINGS


def test_key_value_table_aligns_and_leaves_nested_values_to_json():
    text = key_value_table({"run_dir": "runs/x", "tokens_seen": 768, "calibration": {"a": 1}})
    assert text.splitlines() == ["run_dir      runs/x", "tokens_seen  768"]


def test_progress_in_a_log_file_is_a_line_per_tenth(caplog):
    now = [0.0]
    bar = LoggedProgress(1000, "train", "tok", clock=lambda: now[0], every_seconds=1e9)
    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        for _ in range(40):
            now[0] += 0.5
            bar.update(25)
        bar.set_postfix(loss="3.2100")
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[0] == "train: 10% (100/1.0k tok), 50 tok/s, ETA 18 s"


def test_progress_in_a_log_file_also_logs_every_interval(caplog):
    now = [0.0]
    bar = LoggedProgress(10_000, "measure", "tok", clock=lambda: now[0], every_seconds=10)
    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        for _ in range(30):  # 1% per 4 s: the 10 s clock speaks first
            now[0] += 4
            bar.update(100)
    assert len(caplog.records) == 10 and "measure: 3%" in caplog.records[0].getMessage()


def test_progress_bar_is_logged_when_stderr_is_not_a_terminal():
    assert isinstance(progress_bar(10, "x", stream=io.StringIO()), LoggedProgress)
    quiet = progress_bar(10, "x", enabled=False, stream=io.StringIO())
    assert not isinstance(quiet, LoggedProgress) and quiet.disable


def test_dry_runs_give_json_too(capsys, tmp_path):
    assert main(["train", "tiny", "--dry-run", "--json", f"run_dir={json.dumps(str(tmp_path / 'r'))}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["run_dir"] == str(tmp_path / "r") and doc["plan"]["steps"] == 32
    assert main(["study", "demo", "--dry-run", f"out_dir={json.dumps(str(tmp_path / 's'))}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["cells"]) == doc["estimate"]["cells"] == 2
    assert main(["train", "tiny", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("# resolved config")


def test_python_warnings_become_one_log_line():
    probe = ("import logging, sys, warnings\nfrom sparsinglaw import cli\n"
             "logging.basicConfig(level=logging.INFO, format='%(levelname)s: %(message)s', stream=sys.stderr)\n"
             "cli._route_warnings()\nwarnings.warn('kernel not built; using the PyTorch path')\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().splitlines() == ["WARNING: UserWarning: kernel not built; using the PyTorch path"]


def test_widthdepth_json_matches_its_output_file(tmp_path, capsys):
    ratios = [0.2, 1.8, 6, 14, 48, 75, 114, 165, 213, 282, 384, 597, 1024]
    rows = [f"{r},{0.08 + 0.0004 * min(r - 114, 0)},{3 + 0.0001 * (r - 150) ** 2 / 150}" for r in ratios]
    (tmp_path / "sweep.csv").write_text("ratio,a0,loss\n" + "\n".join(rows))
    out = tmp_path / "wd.json"
    assert main(["widthdepth", str(tmp_path / "sweep.csv"), "--n-boot", "20", "-o", str(out), "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == json.loads(out.read_text())
    assert "bottleneck" not in printed.out.split("{")[0]  # no table before the document
