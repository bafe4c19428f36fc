"""Tracking input sparsity at every checkpoint: calibrated and per-checkpoint PPL-p% modes, the CLI flag."""

from __future__ import annotations

import json

import pytest

import sparsinglaw.cli as cli
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track.tracker import TrackSettings, track

pytest.importorskip("sparsinglaw.measure")

SMALL = {"max_tokens": 256, "batch_size": 4}


def _rows(run_dir, metric):
    return ResultsStore(run_dir).measurements(metric=metric, with_result=True)


def test_calibrated_mode_records_kept_share_and_bytes_with_intervals(run_copy):
    settings = TrackSettings(mode="cett-calibrated", calibrate_last=2, input_sparsity=True, **SMALL)
    summary = track(run_copy, settings)
    inputs = summary["inputs"]
    assert inputs["measured"] == 3 and 0 < inputs["cett"] <= 1
    assert inputs["calibration"]["checkpoints"] == 2
    kept, used = _rows(run_copy, "input-cett-calibrated"), _rows(run_copy, "input-bytes-cett-calibrated")
    assert [r["tokens"] for r in kept] == [r["tokens"] for r in used] == [512, 1024, 1536]
    for k, b in zip(kept, used):
        doc = k["result"]
        assert doc["setting"]["cett"] == inputs["cett"]  # one calibrated c for every checkpoint
        assert 0 < k["activation_ratio"] == k["value"] == doc["kept_share"] <= 1
        # Every projection's input is counted, so the bytes ratio lies between the dense parts' share and 1
        assert doc["dense_bytes_per_token"] * b["value"] == pytest.approx(doc["bytes_per_token"])
        assert b["value"] >= k["value"] - 1e-12 and b["value"] <= 1
        assert set(doc["kept_by_kind"]) == {"q", "k", "v", "o", "gate", "up", "down"}
        assert len(doc["kept_by_block"]) == 2
        if doc["n_sequences"] >= 8:
            lo, hi = doc["interval"]["kept_share"]
            assert lo <= doc["kept_share"] <= hi
            blo, bhi = b["result"]["interval"]["bytes_ratio"]
            assert blo <= b["value"] <= bhi
        else:
            assert doc["interval"] is None and any("no interval" in w for w in doc["warnings"])
    # Calibrated on the last two: their mean PPL ratio stays within about 1 + p%
    assert sum(r["result"]["ppl_ratio"] for r in kept[-2:]) / 2 <= 1.01 + 5e-3


def test_the_per_sequence_counts_pool_to_the_weighted_kept_share(finished_run):
    """The interval's ratio estimator uses per-sequence counts weighted by output rows: pooled, they are
    the parameter-weighted kept share that the row reports."""
    from sparsinglaw.inputs.measure import InputMeasurement
    from sparsinglaw.store import runs
    from sparsinglaw.track.inputs import input_config
    from sparsinglaw.track.tracker import load_checkpoint, validation_data

    cfg, _ = finished_run
    info = runs.complete_checkpoints(cfg.run_dir)[-1]
    m = InputMeasurement(load_checkpoint(info["path"]), validation_data(cfg.run_dir, 256),
                         input_config(TrackSettings(**SMALL)))
    m.dense()
    evaluation = m.evaluate(m.setting("cett", 0.2))
    result = m.method_result(evaluation, "cett")
    kept, slots = evaluation.activity.position_active, evaluation.activity.position_slots
    assert evaluation.activity.by_position and len(kept) == m.data.n_sequences
    assert float(kept.sum() / slots.sum()) == pytest.approx(result.kept_share, rel=1e-9)
    assert 0 < result.kept_share < 1  # c = 0.2 drops some inputs and keeps some


def test_pplp_mode_solves_each_checkpoint_once(run_copy):
    settings = TrackSettings(mode="pplp", input_sparsity=True, **SMALL)
    first = track(run_copy, settings)
    assert first["inputs"] == {"measured": 3, "already": 0, "failed": 0}
    assert track(run_copy, settings)["inputs"] == {"measured": 0, "already": 3, "failed": 0}
    rows = _rows(run_copy, "input-pplp")
    assert len(rows) == 3 and len(_rows(run_copy, "input-bytes-pplp")) == 3
    for r in rows:
        doc = r["result"]
        assert doc["solution"]["method"] == "trend" and doc["interval"] is None
        # The trend's crossing on 8 toy sequences: the pass there lands within a few percent of PPL-1%
        assert 0 < doc["kept_share"] <= 1 and 0.95 < doc["ppl_ratio"] < 1.1
    # Warm starts: the later searches begin at a solved neighbour's input CETT, not the default
    starts = [r["result"]["search"][0]["value"] for r in rows]
    assert starts[0] == pytest.approx(0.05) and starts[1:] != pytest.approx([0.05, 0.05])


def test_off_by_default_records_no_input_rows(run_copy):
    summary = track(run_copy, TrackSettings(mode="pplp", **SMALL))
    assert "inputs" not in summary and _rows(run_copy, "input-pplp") == []


def test_cli_flag(run_copy, capsys):
    code = cli.main(["track", str(run_copy), "--input-sparsity", "--calibrate-last", "2", "--max-tokens", "256",
                     "--batch-size", "4", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["input_sparsity"] is True and doc["summary"]["inputs"]["measured"] == 3
    assert [r["checkpoint"] for r in doc["inputs"]] == ["checkpoint-4", "checkpoint-8", "checkpoint-12"]
    assert all(0 < r["kept_share"] <= r["bytes_ratio"] <= 1 for r in doc["inputs"])
