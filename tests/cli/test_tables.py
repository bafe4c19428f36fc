"""The shared table helpers: estimates rounded to what their interval resolves, columns aligned."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import main
from sparsinglaw.cli.common import aligned_table, format_estimate, interval_decimals, key_value_table


def test_estimate_rounded_to_its_interval():
    assert format_estimate(0.15202005296336635, (0.1412, 0.1634)) == ("0.152", "[0.141, 0.163]")
    assert format_estimate(0.5, (0.42, 0.58)) == ("0.50", "[0.42, 0.58]")
    assert format_estimate(1.004683, (1.0031, 1.0062)) == ("1.0047", "[1.0031, 1.0062]")
    assert format_estimate(0.15202005296336635) == ("0.152", "-")  # no interval: 4 significant digits
    assert interval_decimals(0.3, 0.3) is None and interval_decimals(None, 1.0) is None


def test_aligned_table_and_key_values():
    table = aligned_table(["name", "value", "interval"],
                          [["a", *format_estimate(0.123456, (0.1, 0.15))], ["longer name", 2.0, "-"]])
    lines = table.splitlines()
    assert len({len(line) for line in lines if not line.startswith("-")}) == 1
    assert lines[2].startswith("a ") and lines[2].endswith("[0.100, 0.150]") and lines[3].endswith("  -")
    assert key_value_table({"cett": 0.15202005296336635, "measured": 3, "nested": {}}) == "cett      0.152\nmeasured  3"


# --- every command that prints a table: columns line up, estimates rounded to their intervals, intervals shown ---

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
BRACKETED = re.compile(rf"({NUMBER}) +\[({NUMBER}), ({NUMBER})\]")  # an estimate, then its interval


def decimals(text: str) -> int:
    return len(text.partition(".")[2]) if "." in text and "e" not in text else 0


def assert_aligned(text: str, rule_index: int = 0) -> None:
    """The ``rule_index``-th table in ``text``: every cell of the header and the rows lies inside its column's
    span (marked by the rule) with the gaps between columns blank, and each column's cells all start at its
    left edge or all end at its right edge."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) <= {"-", " "} and "--" in line]
    at = rules[rule_index]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[at])]
    block = [lines[at - 1]]
    for line in lines[at + 1:]:  # the rows: until a line that breaks the column gaps (a note, a blank line)
        if not line.strip() or any(line[b:a].strip() for (_, b), (a, _) in zip(spans, spans[1:])):
            break
        block.append(line)
    assert len(block) >= 2, text
    for k, (start, end) in enumerate(spans):
        cells = [line[start:end] if k < len(spans) - 1 else line[start:] for line in block]
        filled = [c for c in cells if c.strip()]
        left = all(not c[0].isspace() for c in filled)
        right = all(not c[-1].isspace() for c in filled)
        assert left or right, f"column {k} neither left- nor right-aligned:\n" + "\n".join(block)


def assert_rounded_to_intervals(text: str, at_least: int = 1) -> None:
    """Each ``estimate [low, high]`` has as many decimals as its interval's width resolves (two significant
    digits), and no number anywhere carries 17 digits."""
    found = BRACKETED.findall(text)
    assert len(found) >= at_least, text
    for estimate, low, high in found:
        assert decimals(estimate) == decimals(low) == decimals(high), (estimate, low, high)
        resolved = interval_decimals(float(low), float(high))
        assert resolved is None or abs(decimals(low) - resolved) <= 1, (estimate, low, high)
    assert not re.search(r"\d\.\d{7,}", text), text


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("tiny"), hidden_act="relu")


@pytest.fixture(scope="module")
def measured(model_dir, tmp_path_factory):
    """``measure --metric pplp`` on the tiny model: its printed table and its JSON."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("measure") / "r.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["measure", "--model", str(model_dir), "--metric", "pplp", "--p", "1", "--seq-len", "64",
                     "--max-tokens", "512", "--start-cett", "0.1", "--output", str(out)]) == 0
    return printed.getvalue(), out


def test_measure_table(measured):
    printed, out = measured
    result = json.loads(out.read_text())
    assert "0.15202005296336635" not in printed and str(result["activation_ratio"]) not in printed
    assert_aligned(printed, 0)  # the estimates
    assert_aligned(printed, 1)  # the FFNs
    assert_rounded_to_intervals(printed, at_least=3)  # activation ratio, sparsity, CETT
    low, high = result["interval"]["activation_ratio"]
    ratio, interval = format_estimate(result["activation_ratio"], (low, high))
    assert re.search(rf"activation ratio +{re.escape(ratio)}  {re.escape(interval)}", printed)
    assert re.search(r"PPL ratio +\d\.\d+  ± \d\.\d+", printed)
    assert printed.count("no interval: one pass") >= 3  # dense and sparse PPL, dead neurons: say why
    assert "per-FFN values come from one pass: no intervals" in printed


def test_measure_table_at_a_fixed_setting_says_why_no_interval(model_dir, capsys):
    assert main(["measure", "--model", str(model_dir), "--metric", "cett", "--cett", "0.2", "--seq-len", "64",
                 "--max-tokens", "256"]) == 0
    printed = capsys.readouterr().out
    assert_aligned(printed, 0)
    assert re.search(r"activation ratio +\d\.\d{4}  no interval: one pass", printed)
    assert not BRACKETED.search(printed)


@pytest.fixture(scope="module")
def inputs_measured(model_dir, tmp_path_factory):
    """``inputs`` at PPL-1% (ours and TEAL uniform): its printed table, its JSON and ours' thresholds file."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("inputs")
    out, thresholds, printed = folder / "i.json", folder / "t.json", io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["inputs", "--model", str(model_dir), "--methods", "cett,teal-uniform", "--seq-len", "64",
                     "--max-tokens", "512", "--output", str(out), "--thresholds-output", str(thresholds),
                     "--thresholds-method", "cett"]) == 0
    return printed.getvalue(), out, thresholds


def test_inputs_table(inputs_measured):
    printed, out, _ = inputs_measured
    assert_aligned(printed)
    answered = [m for m in json.loads(out.read_text())["methods"] if (m["solution"] or {}).get("interval")]
    assert_rounded_to_intervals(printed.split("\n\n")[1], at_least=3 * len(answered))  # value, kept, bytes
    assert "no interval: one pass (the pass at the answer)" in printed


def test_pareto_table(model_dir, tmp_path, capsys):
    assert main(["pareto", "--model", str(model_dir), "--seq-len", "64", "--max-tokens", "256", "--values",
                 "cett=0.05,0.2", "--values", "topk=0.2", "--values", "fat=0.1", "--output",
                 str(tmp_path / "p.json"), "--plot", str(tmp_path / "p.png")]) == 0
    printed = capsys.readouterr().out
    assert_aligned(printed)
    assert "no interval: one pass per point" in printed and not re.search(r"\d\.\d{5,}", printed)


def test_fit_tables(tmp_path, capsys):
    assert main(["fit", "--paper", "0.1b_relu", "--paper", "0.2b_relu", "--law", "relu", "--n-boot", "10",
                 "--predict-at", "1e12", "--within", "0.001", "--scale", "--output", str(tmp_path / "f.json")]) == 0
    printed = capsys.readouterr().out
    assert_aligned(printed, 0)  # a curve's laws
    assert_aligned(printed, 2)  # the scale table
    assert_rounded_to_intervals(printed, at_least=10)
    assert re.search(r"A\(1e\+12 tokens\) = \S+ \[", printed) and "dA/dD from the fitted law: no interval" in printed


def test_widthdepth_line(tmp_path, capsys):
    r = np.array([0.22, 1.8, 6, 14, 48, 75, 114, 165, 213, 282, 384, 597, 1024])
    noise = np.random.default_rng(0).normal(0, 0.002, len(r))
    rows = zip(r, 0.08 + 0.0004 * np.minimum(r - 114, 0) + noise, 3 + 0.02 * np.log(r / 150) ** 2, strict=True)
    (tmp_path / "s.csv").write_text("ratio,a0,loss\n" + "\n".join(f"{x},{y},{z}" for x, y, z in rows))
    assert main(["widthdepth", str(tmp_path / "s.csv"), "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out
    assert_rounded_to_intervals(printed)
    assert "(plateau and slope: no interval)" in printed


def test_eval_table_rounds_each_score_to_its_standard_error():
    """lm-eval's scores on 20 items (standard error about 0.11): two significant digits of the error."""
    from sparsinglaw.evaluate import EvalReport, ScoreRow

    rows = [ScoreRow("sparsinglaw_mc", "acc", 0.55, 0.55, 0.1141287945, 0.1141287945, 0.4123),
            ScoreRow("sparsinglaw_mc", "acc_norm", 0.6, 0.45, 0.1123903, 0.1141287945, 0.4123)]
    report = EvalReport("tiny", ["sparsinglaw_mc"], rows, 0.4123, {}, [], {"metric": {"name": "cett"}})
    table = report.table()
    assert_aligned(table)
    assert re.search(r"acc +0\.55 +± 0\.11 +0\.55 +± 0\.11 +\+0\.00 +± 0\.16 +~", table), table
    assert "0.1141" not in table and "one count over every evaluated token: no interval" in table


def test_speed_tables(model_dir, measured, inputs_measured, capsys):
    assert main(["speed", "--model", str(model_dir), "--thresholds", str(measured[1]), "--batch-sizes", "1,2",
                 "--new-tokens", "4", "--prompt-len", "8", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert_aligned(printed)
    assert "medians of 1 interleaved repeats (no interval)" in printed
    assert main(["speed", "--model", str(model_dir), "--thresholds", str(inputs_measured[2]), "--batch-sizes", "1",
                 "--new-tokens", "4", "--prompt-len", "8", "--repeats", "1"]) == 0
    assert_aligned(capsys.readouterr().out)


def test_study_verdict_table():
    """The checks of a mini study (analysis files kept in tests/data) as the study and demo print them."""
    from sparsinglaw.cli.study import _verdicts

    printed = _verdicts(Path(__file__).resolve().parents[1] / "data" / "study_analysis_v2")
    assert_aligned(printed, 0)  # the output-sparsity checks
    assert_aligned(printed, 1)  # the input-sparsity checks
    assert printed.count("inconclusive") >= 5 and "[0.044, 0.095]" in printed


def test_data_manifest_table(model_dir, tmp_path, capsys):
    docs = "\n".join(json.dumps({"text": f"document {i} for the shard writer. " * 5}) for i in range(30))
    (tmp_path / "docs.jsonl").write_text(docs)
    assert main(["data", str(tmp_path / "docs.jsonl"), "--tokenizer", str(model_dir), "-o",
                 str(tmp_path / "shards")]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^training    [\d,]+ tokens \(\d+ documents\)$", printed, re.M), printed
    assert "KiB" in printed and "0.0 MiB" not in printed
