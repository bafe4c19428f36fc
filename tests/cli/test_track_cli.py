"""``sparsinglaw track`` takes its settings from the one tracking-settings type: every default it shows is
``TrackSettings``', and ``key=value`` overrides set any field with the syntax of train and study."""

from __future__ import annotations

import argparse

import pytest

from sparsinglaw.cli import build_parser, main
from sparsinglaw.cli.track import _split_remainder, settings_from_args
from sparsinglaw.errors import ConfigError
from sparsinglaw.track.settings import TrackSettings


def _settings(*argv: str) -> TrackSettings:
    args = build_parser("track").parse_args(["track", *argv])
    return settings_from_args(_split_remainder(args))


def _track_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser("track")._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["track"]


def test_defaults_are_the_tracking_settings_type():
    assert _settings("RUN") == TrackSettings()
    assert TrackSettings().mode == "cett-calibrated"
    defaults = TrackSettings()
    shown = {a.dest: a.default for a in _track_parser()._actions if a.option_strings}
    for field in ("mode", "p", "calibrate_last", "max_tokens", "batch_size"):
        assert shown[field] == getattr(defaults, field), field
    assert shown["cold_start"] is (not defaults.warm_start)


def test_help_shows_the_calibrated_default(capsys):
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: cett- calibrated)" in text or "(default: cett-calibrated)" in text
    assert f"(default: {TrackSettings().max_tokens})" in text and "tolerance" in text


def test_options_after_the_run_dir_and_overrides_mix():
    settings = _settings("RUN", "--max-tokens", "256", "mode=pplp", "tolerance=1e-4", "--cold-start")
    assert settings == TrackSettings(mode="pplp", max_tokens=256, tolerance=1e-4, warm_start=False)
    assert _settings("--p", "2", "RUN", "p=0.5").p == 0.5  # overrides come last
    assert _settings("RUN", "--mode", "pplp").mode == "pplp"
    assert _settings("RUN", "warm_start=false").warm_start is False


@pytest.mark.parametrize(("argv", "message"), [
    (["colour=red"], "unknown setting colour (known: batch_size, calibrate_last,"),
    (["tolerance=abc"], "tolerance: expected float, got 'abc'"),
    (["mode=dense"], "mode='dense' is not one of cett-calibrated, pplp"),
    (["--bogus"], "unrecognized arguments: --bogus; overrides look like key=value"),
    (["--p", "0"], "p=0.0 must be > 0"),
])
def test_bad_settings_are_one_config_error(argv, message):
    with pytest.raises(ConfigError) as err:
        _settings("RUN", *argv)
    assert message in str(err.value)


def test_bad_override_through_the_cli_is_one_line(tmp_path, capfd):
    assert main(["track", str(tmp_path), "colour=red"]) == 2
    err = capfd.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: unknown setting colour")


def test_help_after_the_run_dir_is_the_full_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["track", "RUN", "--help"])
    assert stop.value.code == 0 and "run_dir" in capsys.readouterr().out
