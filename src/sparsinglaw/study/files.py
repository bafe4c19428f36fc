"""The names of the files a study directory holds: the stages write them, the report only reads them.

    study.toml        the resolved study config          events.jsonl   train / done events, append-only
    cells/NAME/       each cell's training run            cells/NAME/study_cell.json   the cell is finished
    fits.json         the fitting stage                   pretrained.json   the metric comparison
    probes.json       per-layer frequencies, per-token    timings.json  wall seconds per stage
    report/           index.html with its PNG and CSV files
"""

STUDY_FILE = "study.toml"
EVENTS = "events.jsonl"
CELLS = "cells"
CELL_DONE = "study_cell.json"
BUILTIN_JSONL = "builtin-corpus.jsonl"  # the built-in corpus, written once per study (reading it takes seconds)
FITS = "fits.json"
PRETRAINED = "pretrained.json"
PROBES = "probes.json"
TIMINGS = "timings.json"
REPORT_DIR = "report"
ANALYSIS = "analysis.json"  # in REPORT_DIR: what the report showed, as JSON
