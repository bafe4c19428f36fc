"""``sparsinglaw eval`` end to end on a saved tiny model and a local task, and its refusals."""

from __future__ import annotations

import json

import pytest

from sparsinglaw.cli import main
from sparsinglaw.thresholds import Thresholds

pytest.importorskip("lm_eval")


def test_eval_prints_side_by_side_table_and_writes_json(tiny_dir, tiny_thresholds_file, mc_task, tmp_path, capsys):
    include, task = mc_task
    out = tmp_path / "report.json"
    code = main(["eval", "--model", str(tiny_dir), "--thresholds", str(tiny_thresholds_file), "--tasks", task,
                 "--include-path", str(include), "--limit", "4", "--batch-size", "4", "--bootstrap-iters", "0",
                 "--lm-eval-args", "cache_requests=False", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "dense" in printed and "sparse" in printed and "diff" in printed and task in printed
    report = json.loads(out.read_text())
    assert {r["metric"] for r in report["rows"]} == {"acc", "acc_norm"}
    for row in report["rows"]:
        assert row["diff"] == pytest.approx(row["sparse"] - row["dense"])
    assert 0.0 < report["activation_ratio"] < 1.0
    assert report["task_activation_ratio"][task] == report["activation_ratio"]
    assert len(report["layer_activation_ratio"]) == 2
    assert report["thresholds"]["metric"]["name"] == "cett" and report["lm_eval_args"]["limit"] == 4


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    # transformers' weight-loading progress bars may precede the error; the error itself is one line
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line]
    assert "Traceback" not in err
    assert len(lines) == 1, repr(lines)
    return lines[0]


def test_thresholds_of_another_model_are_refused_by_the_cli(tiny_dir, mc_task, tmp_path, capsys):
    include, task = mc_task
    other = Thresholds(layers=[{"name": f"layers.{i}.mlp", "block": i, "expert": None, "width": 160, "threshold": 0.1}
                               for i in range(3)], model={"name": "another-model", "n_ffn": 3, "widths": [160] * 3})
    path = other.save(tmp_path / "other.json")
    code = main(["eval", "--model", str(tiny_dir), "--thresholds", str(path), "--tasks", task,
                 "--include-path", str(include), "--limit", "2"])
    assert code != 0
    line = one_line_error(capsys)
    assert line.startswith("error:") and "another-model" in line and "measure thresholds on this model" in line
    code = main(["export", "--model", str(tiny_dir), "--thresholds", str(path), "--out", str(tmp_path / "x")])
    assert code != 0 and "measure thresholds on this model" in one_line_error(capsys)


def test_bad_arguments_are_one_line_errors(tiny_dir, tiny_thresholds_file, mc_task, tmp_path, capsys):
    include, task = mc_task
    base = ["eval", "--model", str(tiny_dir), "--tasks", task, "--include-path", str(include)]
    assert main([*base, "--thresholds", str(tmp_path / "missing.json")]) != 0
    assert "does not exist" in one_line_error(capsys)
    assert main([*base, "--thresholds", str(tiny_thresholds_file), "--lm-eval-args", "no_such_arg=1"]) != 0
    assert "unknown lm-eval argument" in one_line_error(capsys)
    assert main([*base, "--thresholds", str(tiny_thresholds_file), "--batch-size", "x"]) != 0
    assert "--batch-size" in one_line_error(capsys)
