"""``sparsinglaw eval`` end to end on a saved tiny model and a local task, and its refusals."""

from __future__ import annotations

import json

import pytest

from sparsinglaw.cli import main
from sparsinglaw.tables import format_with_error
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


def test_shipped_task_runs_offline_with_standard_errors(tiny_dir, tiny_thresholds_file, tmp_path, capsys, caplog,
                                                       monkeypatch):
    """The README's eval line: the task shipped with the package, found by name (no --include-path, no hub);
    lm-eval's standard errors shown, and a difference within its standard error is said to be one."""
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "report.json"
    code = main(["eval", "--model", str(tiny_dir), "--thresholds", str(tiny_thresholds_file), "--tasks",
                 "sparsinglaw_mc", "--limit", "8", "--lm-eval-args", "cache_requests=False", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    header = printed.splitlines()[0].split()
    assert header[:4] == ["task", "metric", "dense", "±"] and header.count("±") == 3
    report = json.loads(out.read_text())
    rows = {r["metric"]: r for r in report["rows"]}
    assert set(rows) == {"acc", "acc_norm"}
    for row in rows.values():  # 8 items: the standard error of a share p is sqrt(p (1 - p) / 7)
        p = row["dense"]
        assert row["dense_stderr"] == pytest.approx((p * (1 - p) / 7) ** 0.5, abs=1e-9)
        assert row["diff_stderr"] == pytest.approx((row["dense_stderr"] ** 2 + row["sparse_stderr"] ** 2) ** 0.5)
        assert row["within_noise"] == (abs(row["diff"]) <= row["diff_stderr"])
        shown = [line for line in printed.splitlines() if line.split()[:2] == ["sparsinglaw_mc", row["metric"]]]
        dense, error = format_with_error(row["dense"], row["dense_stderr"])  # rounded to the error's 2 digits
        assert len(shown) == 1 and f"{dense}  {error}" in shown[0]
    noisy = [r for r in rows.values() if r["within_noise"]]
    warned = [rec.getMessage() for rec in caplog.records if "within its standard error" in rec.getMessage()]
    assert len(warned) == len(noisy) and (not noisy or "~ the difference is within" in printed)


def test_hub_retries_are_logged_once(caplog, monkeypatch):
    """huggingface_hub's real backoff against a closed local port: three failed attempts, one log line."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import http_backoff

    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)  # the tests run offline; this is localhost

    from sparsinglaw.evaluate import retries_logged_once

    with retries_logged_once() as once, caplog.at_level("WARNING"), pytest.raises(httpx2.ConnectError):
        http_backoff("GET", "http://127.0.0.1:9/", max_retries=2, base_wait_time=0.01, max_wait_time=0.01)
    hub = [r.getMessage() for r in caplog.records if r.name.startswith("huggingface_hub")]
    assert once.seen >= 4 and len(hub) == 1 and "further retries of the hub are not logged" in hub[0]
