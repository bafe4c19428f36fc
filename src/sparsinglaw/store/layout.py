"""The names of the files a study (or tracked training run) directory holds.

The study's stages write them, the report only reads them. This module imports nothing, so both
``sparsinglaw.study`` and ``sparsinglaw.report`` use it without importing each other.

    study.toml        the resolved study config          events.jsonl   train / done events, append-only
    cells/NAME/       each cell's training run            cells/NAME/study_cell.json   the cell is finished
    pretrained.json   the metric comparison               timings.json  wall seconds per stage
    fits.json         the analysis: each model's measurements, fitted law (with its drawn curve and band),
                      the width-depth and scale analyses
    comparison.json   the verdicts against the paper      paper.json    the paper's curves and published fits
    setup.json        name, kind, tracking settings       probes.json   per-layer frequencies, per-token ratios
    report/           index.html with its PNG and CSV files, and analysis.json (what the report showed)
"""

STUDY_FILE = "study.toml"
EVENTS = "events.jsonl"
CELLS = "cells"
CELL_DONE = "study_cell.json"
BUILTIN_JSONL = "builtin-corpus.jsonl"  # the built-in corpus, written once per study (reading it takes seconds)
PRETRAINED = "pretrained.json"
TIMINGS = "timings.json"

# The analysis stages' files: the report needs every one of them.
FITS = "fits.json"
COMPARISON = "comparison.json"
PAPER = "paper.json"
SETUP = "setup.json"
PROBES = "probes.json"
ANALYSIS_FILES = (FITS, COMPARISON, PAPER, SETUP, PROBES)
ANALYSIS_SCHEMA = "sparsinglaw.analysis/2"  # in fits.json; older fits.json files lack the measurements

REPORT_DIR = "report"
ANALYSIS = "analysis.json"  # in REPORT_DIR: what the report showed, as JSON
