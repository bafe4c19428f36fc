"""Whole studies from one config: a grid of training runs, tracked, fitted and reported.

from sparsinglaw.study import load_study, run_study
cfg = load_study("study.toml")            # or a preset: "demo", "mini", "reproduce", "paper-0.1b"
summary = run_study(cfg)                  # trains/tracks every unfinished cell, fits, writes the report"""

from sparsinglaw.study.config import PRESETS, Cell, FitSpec, ShapeSpec, StudyConfig, load_study


def run_study(cfg, **kw):
    """Train, track, fit and report ``cfg`` (see ``sparsinglaw.study.runner.run_study``)."""
    from sparsinglaw.study.runner import run_study as _run  # here: the package's face stays cheap to import

    return _run(cfg, **kw)


__all__ = ["PRESETS", "Cell", "FitSpec", "ShapeSpec", "StudyConfig", "load_study", "run_study"]
