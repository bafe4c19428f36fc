"""``sparsinglaw speed`` end to end on a tiny saved ReLU Llama."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import text_tokenizer, tiny_llama
from sparsinglaw.cli import main
from sparsinglaw.sparse.speed import compare_speed
from sparsinglaw.thresholds import Thresholds

RUN = ["--new-tokens", "4", "--repeats", "1", "--prompt-len", "8", "--batch-sizes", "1,2", "--threads", "1"]


@pytest.fixture(scope="module")
def relu_dir(tmp_path_factory):
    """An untrained tiny ReLU Llama with a real-text tokenizer (speed does not need a trained model)."""
    path = tmp_path_factory.mktemp("relu_llama")
    tokenizer = text_tokenizer()
    tiny_llama("relu", vocab=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_speed_zeros_only_and_thresholds(relu_dir, tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["speed", "--model", str(relu_dir), "--zeros-only", "--output", str(out), *RUN]) == 0
    report = json.loads(out.read_text())
    assert [r["batch"] for r in report["rows"]] == [1, 2]
    assert all(0 < r["activation_ratio"] < 1 and r["dense_tokens_per_s"] > 0 for r in report["rows"])
    thresholds = Thresholds(layers=[{"name": f"layers.{i}.mlp", "block": i, "expert": None, "width": 160,
                                     "threshold": 1e-3} for i in range(2)], model={"name": "tiny"})
    path = thresholds.save(tmp_path / "t.json")
    assert main(["speed", "--model", str(relu_dir), "--thresholds", str(path), *RUN]) == 0
    assert "FFN ms" in capsys.readouterr().out


def test_speed_user_errors_are_one_line(relu_dir, capsys):
    assert main(["speed", "--model", str(relu_dir), *RUN]) == 2
    assert main(["speed", "--model", str(relu_dir), "--zeros-only", "--batch-sizes", "x", *RUN[:-4]]) == 2
    wrong = Thresholds(layers=[{"name": "x", "block": 0, "expert": None, "width": 7, "threshold": 0.1}],
                       model={"name": "other"}).save(relu_dir.parent / "wrong.json")
    assert main(["speed", "--model", str(relu_dir), "--thresholds", str(wrong), *RUN]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and "measure thresholds on this model" in errors[2]


def test_compare_speed_reports_fallback_for_large_batches():
    from sparsinglaw.sparse import SparsePolicy

    model = tiny_llama("relu")
    prompts = torch.randint(0, 256, (4, 6))
    report = compare_speed(model, prompts=prompts, zeros_only=True, batch_sizes=(1, 4), new_tokens=3, repeats=1,
                           policy=SparsePolicy(max_tokens=2, max_share=1.0))
    one, four = report.rows
    assert one.sparse_share == 1.0 and four.sparse_share == 0.0 and four.computed_ratio == 1.0
    assert "speedup" in report.table()


def test_speed_says_nothing_ran_sparsely_instead_of_a_speedup(tmp_path, capfd, caplog):
    """A SiLU model with thresholds that keep almost every neuron: every FFN call exceeds the 0.3 fallback
    limit, so both timings are dense; the ratio of two dense timings is no speedup and is not shown as one."""
    path = tmp_path / "silu"
    tokenizer = text_tokenizer()
    tiny_llama("silu", vocab=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    thresholds = Thresholds(layers=[{"name": f"layers.{i}.mlp", "block": i, "expert": None, "width": 160,
                                     "threshold": 0.0} for i in range(2)], model={"name": "tiny"})
    out = tmp_path / "speed.json"
    assert main(["speed", "--model", str(path), "--thresholds", str(thresholds.save(tmp_path / "t.json")),
                 "--output", str(out), *RUN]) == 0
    captured = capfd.readouterr()
    report = json.loads(out.read_text())
    assert all(r["sparse_share"] == 0 and r["activation_ratio"] > 0.3 for r in report["rows"])
    assert all(not r["ran_sparsely"] and r["decode_speedup"] is None and r["ffn_speedup"] is None
               for r in report["rows"])
    assert len(report["warnings"]) == 2 and "nothing ran sparsely" in report["warnings"][0]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("batch 1: nothing ran sparsely") and "above max_share=0.3" in m for m in logged)
    table_rows = [line for line in captured.out.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert len(table_rows) == 2 and all("x" not in row and "dense" in row for row in table_rows), captured.out


def test_speed_help_gives_each_kind_s_default_policy(capsys):
    """The help cannot import torch to read the defaults, so it writes them out: they must match."""
    from sparsinglaw.sparse.ffn import SparseFFN
    from sparsinglaw.sparse.input_sparse import InputSparseLinear

    with pytest.raises(SystemExit):
        main(["speed", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    ffn, projections = SparseFFN.DEFAULT_POLICY, InputSparseLinear.DEFAULT_POLICY
    assert f"(default: {ffn.max_tokens} for FFNs; projections: {projections.max_tokens}, the most" in text
    assert f"(default: {ffn.max_share} for FFNs, {projections.max_share} for projections)" in text
    assert projections.max_tokens == InputSparseLinear.TOKEN_LIMIT
