"""Searches show their progress (pass count, setting and ratio, passes left) as plain log lines, and Ctrl-C
keeps every finished method's or setting's result and says where, never claiming what was not written
(issue 29, point 5). A tiny model trained briefly on English, with the interrupt raised inside the run."""

from __future__ import annotations

import json
import logging

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import main

COMMON = ("--seq-len", "64", "--max-tokens", "256", "--threads", "1")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_a_search_logs_each_pass_with_its_setting_ratio_and_passes_left(caplog):
    from helpers import random_eval_data, tiny_llama
    from sparsinglaw.measure import MeasureConfig, measure

    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        result = measure(tiny_llama(), random_eval_data(), MeasureConfig(metric="pplp", p=1.0, max_sparse_passes=4))
    lines = [r.getMessage() for r in caplog.records if "PPL-p% search: pass" in r.getMessage()]
    assert len(lines) == result.solution["sparse_passes"] == 4
    assert lines[0].startswith("PPL-p% search: pass 1 of at most 4, CETT 0.05 -> PPL ratio ")
    assert all("more pass(es)" in line for line in lines)
    assert lines[-1].endswith("about 0 more pass(es)")  # the budget is spent


def test_inputs_interrupted_keeps_the_finished_methods_and_says_where(model_dir, tmp_path, monkeypatch, capsys):
    from sparsinglaw.inputs.measure import InputMeasurement

    solve = InputMeasurement.solve

    def interrupted_after_the_first(self, method, p):
        if method == "teal-uniform":
            raise KeyboardInterrupt
        return solve(self, method, p)

    monkeypatch.setattr(InputMeasurement, "solve", interrupted_after_the_first)
    out = tmp_path / "inputs.json"
    code = main(["inputs", "--model", str(model_dir), "--methods", "cett,teal-uniform", "--p", "5", "--tolerance",
                 "0.01", *COMMON, "--output", str(out)])
    assert code == 130
    said = capsys.readouterr().err
    assert f"interrupted: kept the finished methods (cett) in {out}" in said
    assert [m["method"] for m in json.loads(out.read_text())["methods"]] == ["cett"]


def test_measure_interrupted_says_nothing_was_written(model_dir, tmp_path, monkeypatch, capsys):
    from sparsinglaw.measure import Measurement

    def interrupted(self, metric, value):
        raise KeyboardInterrupt

    monkeypatch.setattr(Measurement, "at", interrupted)
    out = tmp_path / "m.json"
    assert main(["measure", "--model", str(model_dir), *COMMON, "--output", str(out)]) == 130
    assert "interrupted: nothing finished, so no results were written" in capsys.readouterr().err
    assert not out.exists()


def test_pareto_writes_each_point_as_it_goes(model_dir, tmp_path, monkeypatch, capsys, caplog):
    from sparsinglaw.measure import Measurement

    at, calls = Measurement.at, []

    def interrupted_at_the_third(self, metric, value):
        calls.append(value)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return at(self, metric, value)

    monkeypatch.setattr(Measurement, "at", interrupted_at_the_third)
    out = tmp_path / "p.json"
    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        code = main(["pareto", "--model", str(model_dir), "--metrics", "cett", "--values", "cett=0.05,0.1,0.2,0.4",
                     *COMMON, "--output", str(out), "--plot", ""])
    assert code == 130
    assert f"interrupted: kept 2 finished point(s) in {out}" in capsys.readouterr().err
    assert [p["value"] for p in json.loads(out.read_text())["points"]] == [0.05, 0.1]
    assert any("pareto: point 2 of 4, cett 0.1 -> activation ratio" in r.getMessage() for r in caplog.records)


# measure, inputs and pareto through the CLI in one process whose stderr is a file (not a terminal).
IN_A_LOG_FILE = """
import sys
from sparsinglaw.cli import main
model, common = sys.argv[1], ["--seq-len", "64", "--max-tokens", "256", "--threads", "1"]
print("codes", [main(["measure", "--model", model, *common]),
       main(["inputs", "--model", model, "--methods", "cett", "--p", "5", "--tolerance", "0.01", *common]),
       main(["pareto", "--model", model, "--metrics", "cett", "--values", "cett=0.1,0.2", *common, "--plot", ""])])
"""


def test_progress_lines_reach_a_log_file(model_dir, tmp_path):
    import subprocess
    import sys

    from helpers import subprocess_env

    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        done = subprocess.run([sys.executable, "-c", IN_A_LOG_FILE, str(model_dir)], stdout=subprocess.PIPE,
                              stderr=log, text=True, env=subprocess_env(), timeout=600, cwd=tmp_path)
    said = log_path.read_text()
    assert done.returncode == 0, said[-2000:]
    codes = next(line for line in done.stdout.splitlines() if line.startswith("codes "))
    assert all(code in (0, 3) for code in json.loads(codes[6:])), (codes, said[-2000:])
    assert "PPL-p% search: pass 1 of at most 12, CETT 0.05 -> PPL ratio " in said
    assert "inputs cett: pass 1 of at most 8, cett 0.05 -> PPL ratio " in said and "more pass(es)" in said
    assert "pareto: point 1 of 2, cett 0.1 -> activation ratio " in said and "; 1 left" in said
    assert "\r" not in said  # log lines, not a redrawn bar
