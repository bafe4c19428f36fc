"""Input thresholds through the CLI: ``inputs --thresholds-output`` writes them, ``eval --thresholds`` runs
the masked model on a local perplexity task (PPL ratio > 1 at aggressive thresholds), and files of an
unknown kind or version are one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import main

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.usefixtures("hf_datasets_cache")  # lm-eval's datasets in a throwaway cache
TASK = "sl_local_rolling"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def rolling_task(tmp_path_factory):
    """A local lm-eval perplexity task (rolling log-likelihood of built-in corpus passages), nothing downloaded."""
    from sparsinglaw.data import builtin_documents

    directory = tmp_path_factory.mktemp("tasks")
    data = directory / f"{TASK}.jsonl"
    data.write_text("".join(json.dumps({"text": " ".join(doc.split()[:60])}) + "\n"
                            for doc in builtin_documents()[80:84]), encoding="utf-8")
    (directory / f"{TASK}.yaml").write_text(
        f"task: {TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: \"{{text}}\"\n"
        "metric_list:\n  - metric: word_perplexity\n  - metric: byte_perplexity\n  - metric: bits_per_byte\n",
        encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def aggressive_thresholds(model_dir, tmp_path_factory):
    """TEAL-uniform input thresholds at 70% input sparsity, written by ``inputs --thresholds-output``."""
    path = tmp_path_factory.mktemp("thresholds") / "input.json"
    code = main(["inputs", "--model", str(model_dir), "--fixed", "--methods", "cett,teal-uniform",
                 "--sparsity", "0.7", "--seq-len", "64", "--max-tokens", "256", "--threads", "1",
                 "--thresholds-output", str(path), "--thresholds-method", "teal-uniform"])
    assert code == 0
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line]
    assert "Traceback" not in err and len(lines) == 1, repr(lines)
    return lines[0]


def test_inputs_writes_a_thresholds_file_of_the_chosen_method(aggressive_thresholds):
    data = json.loads(aggressive_thresholds.read_text())
    assert data["kind"] == "input" and data["method"]["name"] == "teal-uniform" and data["weighted"] is False
    assert data["method"]["value"] == pytest.approx(0.7) and len(data["projections"]) == 14


def test_eval_runs_the_input_masked_model_and_perplexity_rises(model_dir, aggressive_thresholds, rolling_task,
                                                                tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["eval", "--model", str(model_dir), "--thresholds", str(aggressive_thresholds), "--tasks", TASK,
                 "--include-path", str(rolling_task), "--n-boot", "0", "--threads", "1",
                 "--lm-eval-args", "cache_requests=False", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "kept share of projection inputs" in printed
    report = json.loads(out.read_text())
    row = next(r for r in report["rows"] if r["metric"] == "word_perplexity")
    assert row["sparse"] / row["dense"] > 1.0
    assert 0.2 < report["activation_ratio"] < 0.5  # about 30% of the inputs kept at 70% input sparsity
    assert len(report["layer_activation_ratio"]) == 14 and report["thresholds"]["kind"] == "input"


@pytest.mark.parametrize("flag", ["--sparse-compute", "--sparse-ffn"])  # the old spelling stays accepted
def test_eval_sparse_compute_with_input_thresholds_scores_like_the_masks(model_dir, aggressive_thresholds,
                                                                         rolling_task, tmp_path, flag):
    reports = {}
    for name, extra in (("masked", []), ("sparse", [flag])):
        out = tmp_path / f"{name}.json"
        code = main(["eval", "--model", str(model_dir), "--thresholds", str(aggressive_thresholds), "--tasks", TASK,
                     "--include-path", str(rolling_task), "--n-boot", "0", "--threads", "1",
                     "--lm-eval-args", "cache_requests=False", "--output", str(out), *extra])
        assert code == 0
        reports[name] = json.loads(out.read_text())
    rows = {name: next(r for r in rep["rows"] if r["metric"] == "word_perplexity") for name, rep in reports.items()}
    assert rows["sparse"]["sparse"] > rows["sparse"]["dense"]  # the sparse run really drops inputs
    assert rows["sparse"]["sparse"] == pytest.approx(rows["masked"]["sparse"], rel=1e-4)
    assert reports["sparse"]["activation_ratio"] == pytest.approx(reports["masked"]["activation_ratio"], rel=1e-6)


@pytest.mark.parametrize("change, message", [({"kind": "heads"}, "kind 'heads'"),
                                             ({"version": 7}, "version 7")])
@pytest.mark.parametrize("command", ["eval", "export"])
def test_unknown_kind_or_version_is_exit_2_and_one_line(model_dir, aggressive_thresholds, rolling_task, tmp_path,
                                                        capsys, change, message, command):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(json.loads(aggressive_thresholds.read_text()) | change))
    rest = (["--tasks", TASK, "--include-path", str(rolling_task)] if command == "eval"
            else ["--output", str(tmp_path / "exported")])
    code = main([command, "--model", str(model_dir), "--thresholds", str(bad), *rest])
    line = one_line_error(capsys)
    assert code == 2 and line.startswith("error:") and message in line


def test_combine_with_writes_a_combined_file_that_eval_applies(model_dir, rolling_task, tmp_path, capsys):
    output = tmp_path / "output.json"
    assert main(["measure", "--model", str(model_dir), "--metric", "cett", "--cett", "0.3", "--seq-len", "64",
                 "--max-tokens", "256", "--threads", "1", "--output", str(output)]) == 0
    combined = tmp_path / "combined.json"
    assert main(["inputs", "--model", str(model_dir), "--fixed", "--methods", "cett", "--cett", "0.3",
                 "--seq-len", "64", "--max-tokens", "256", "--threads", "1", "--thresholds-output", str(combined),
                 "--combine-with", str(output)]) == 0
    data = json.loads(combined.read_text())
    assert data["kind"] == "combined" and data["input"]["kind"] == "input" and data["output"]["kind"] == "output"
    measured = [layer["threshold"] for layer in json.loads(output.read_text())["layers"]]
    assert [layer["threshold"] for layer in data["output"]["layers"]] == measured
    capsys.readouterr()
    report = tmp_path / "report.json"
    code = main(["eval", "--model", str(model_dir), "--thresholds", str(combined), "--tasks", TASK,
                 "--include-path", str(rolling_task), "--n-boot", "0", "--threads", "1",
                 "--lm-eval-args", "cache_requests=False", "--output", str(report)])
    assert code == 0
    result = json.loads(report.read_text())
    assert result["thresholds"]["kind"] == "combined" and len(result["layer_activation_ratio"]) == 2
    row = next(r for r in result["rows"] if r["metric"] == "word_perplexity")
    assert row["sparse"] > row["dense"]


def test_combine_with_needs_thresholds_output(model_dir, tmp_path, capsys):
    code = main(["inputs", "--model", str(model_dir), "--combine-with", str(tmp_path / "output.json")])
    assert code == 2 and "--thresholds-output" in one_line_error(capsys)
