"""Tracking: PPL-p% at each checkpoint (skipping those done and incomplete ones), calibrated CETT mode, CLI."""

from __future__ import annotations

import math

import pytest

import sparsinglaw.cli as cli
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import MARKER
from sparsinglaw.track.tracker import TrackSettings, track

pytest.importorskip("sparsinglaw.measure")


def test_pplp_per_checkpoint_skips_done_and_incomplete(run_copy):
    (run_copy / "checkpoint-12" / MARKER).unlink()  # as if still being written
    settings = TrackSettings(mode="pplp", max_tokens=256, batch_size=4)
    assert track(run_copy, settings) == {"measured": 2, "already": 0, "failed": 0}
    assert track(run_copy, settings) == {"measured": 0, "already": 2, "failed": 0}  # nothing redone
    store = ResultsStore(run_copy)
    rows = store.measurements(metric="pplp", with_result=True)
    assert [r["checkpoint"] for r in rows] == ["checkpoint-4", "checkpoint-8"]
    # This 12-step toy's checkpoint-8 barely uses its FFNs: even CETT 1 stays below PPL-1%, so its search has
    # no answer; tracking keeps its CETT-1 pass as a bound, flagged as one.
    assert "bound" in rows[1]["result"]["solution"] and rows[1]["result"]["setting"]["cett"] == 1.0
    result = rows[0]["result"]
    assert 0 < result["activation_ratio"] <= 1 and result["ppl_ratio"] <= 1.0 + 0.01 + 1e-3
    assert len(result["layers"]) == 2 and 0 <= result["dead_neuron_ratio"] <= 1
    assert sum(result["frequency_histogram"]["counts"]) == 2 * 80  # every neuron of both FFNs
    assert store.points(metric="pplp") == [(512, rows[0]["activation_ratio"]), (1024, rows[1]["activation_ratio"])]


def test_each_search_starts_at_the_nearest_measured_checkpoints_solution(run_copy):
    settings = TrackSettings(mode="pplp", max_tokens=256, batch_size=4)
    marker = run_copy / "checkpoint-4" / MARKER
    saved = marker.read_bytes()
    marker.unlink()  # checkpoints 8 and 12 first, then 4
    assert track(run_copy, settings)["measured"] == 2
    marker.write_bytes(saved)
    assert track(run_copy, settings)["measured"] == 1
    rows = {r["checkpoint"]: r["result"] for r in ResultsStore(run_copy).measurements(metric="pplp", with_result=True)}
    starts = {name: result["search"][0]["cett"] for name, result in rows.items()}
    solved_at_8 = min(rows["checkpoint-8"]["setting"]["cett"], 0.99)
    assert starts["checkpoint-8"] == pytest.approx(0.05)  # nothing measured yet: the default start
    assert starts["checkpoint-12"] == pytest.approx(solved_at_8)
    assert starts["checkpoint-4"] == pytest.approx(solved_at_8)  # 512 tokens: nearer 1024 than 1536


def test_cold_start_when_asked(run_copy):
    assert track(run_copy, TrackSettings(mode="pplp", max_tokens=256, batch_size=4, warm_start=False))["measured"] == 3
    rows = ResultsStore(run_copy).measurements(metric="pplp", with_result=True)
    assert [r["result"]["search"][0]["cett"] for r in rows] == pytest.approx([0.05] * 3)


def test_warm_start_picks_the_nearest_checkpoint_and_keeps_the_start_valid():
    from sparsinglaw.track.tracker import warm_start_setting

    assert warm_start_setting({}, 100) == {}
    assert warm_start_setting({512: 0.1, 1536: 0.3}, 1024) == {"start_cett": 0.1}  # a tie: the earlier one
    assert warm_start_setting({512: 0.1, 1536: 0.3}, 1400) == {"start_cett": 0.3}
    assert warm_start_setting({512: 1.0}, 600) == {"start_cett": 0.99}  # MeasureConfig needs start < 1


def test_calibrated_cett_applies_one_c_to_all(run_copy):
    summary = track(run_copy, TrackSettings(mode="cett-calibrated", calibrate_last=2, max_tokens=256, batch_size=4))
    assert summary["measured"] == 3 and 0 < summary["cett"] <= 1
    rows = ResultsStore(run_copy).measurements(metric="cett-calibrated", with_result=True)
    assert len(rows) == 3
    assert {r["result"]["setting"]["cett"] for r in rows} == {summary["cett"]}
    # Calibrated on the last two: their mean PPL ratio stays within 1 + p% (this 12-step model's FFNs matter
    # so little that c may reach 1, dropping every neuron; the ratio then stays below the target anyway).
    mean_last = sum(r["result"]["ppl_ratio"] for r in rows[-2:]) / 2
    assert mean_last <= 1.01 + 1e-3
    assert all(0 <= r["activation_ratio"] <= 1 for r in rows)
    for r in rows:  # the trend calibration is recorded; each row has its interval once 8 sequences exist
        result = r["result"]
        assert result["solution"]["method"] == "cett-calibrated" and result["solution"]["checkpoints"] == 2
        assert 0 <= result["never_active_ratio"] <= result["dead_neuron_ratio"] <= 1
        if result["dead_neuron_ratio"] < 1:  # (c = 1 can drop every neuron of this toy: no live ones then)
            assert result["live_activation_ratio"] >= result["activation_ratio"] - 1e-12  # the dead pull it down
        else:
            assert result["live_activation_ratio"] is None
        if result["n_sequences"] >= 8:
            lo, hi = result["interval"]["activation_ratio"]
            assert lo <= result["activation_ratio"] <= hi
            lo, hi = result["interval"]["dead_neuron_ratio"]  # the population's intervals too
            assert lo <= result["dead_neuron_ratio"] <= hi
            if result["live_activation_ratio"] is not None:
                lo, hi = result["interval"]["live_activation_ratio"]
                assert lo <= result["live_activation_ratio"] <= hi
            assert lo < hi or result["activation_ratio"] in (0.0, 1.0)  # c = 1 drops every neuron of this toy
        else:
            assert result["interval"] is None and any("no interval" in w for w in result["warnings"])
    # The CLI's table: aligned columns, values rounded to their interval, no 17-digit floats (issue 32).
    from sparsinglaw.cli.track import measurements_table

    table = measurements_table(rows, summary).splitlines()
    header, body = table[0], table[2:5]
    assert [line.index("checkpoint-") for line in body] == [0, 0, 0]
    assert {len(line) for line in body} == {len(header)}  # right-aligned to the header's last column
    assert not any(len(token) > 12 and token.replace(".", "").isdigit() for token in " ".join(table).split())
    cett_line = next(line for line in table if line.startswith("cett"))
    assert f"{summary['cett']:.4g}" in cett_line and "standard error" in cett_line
    # The dense pass covered the validation split the trainer evaluated, so its loss is the trainer's eval_loss
    # (studies skip the trainer's evaluation and read this one: study.collect.validation_losses).
    evals = {r["tokens"]: r["value"] for r in ResultsStore(run_copy).measurements(metric="eval_loss")}
    for r in rows:
        assert math.log(r["result"]["dense_ppl"]) == pytest.approx(evals[r["tokens"]], rel=1e-4)


def test_track_cli(run_copy, capsys, monkeypatch, tmp_path):
    if "track" not in cli.SUBCOMMANDS:
        monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, "track"))
    out_csv = tmp_path / "out.csv"
    code = cli.main(["track", str(run_copy), "--mode", "pplp", "--max-tokens", "256", "--batch-size", "4",
                     "--export", str(out_csv), "--cold-start"])
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()  # the table: a row per checkpoint, then the summary's counts
    assert sum(line.startswith("checkpoint-") for line in lines) == 3 and ["measured", "3"] in map(str.split, lines)
    assert "pplp" in out_csv.read_text()
    rows = ResultsStore(run_copy).measurements(metric="pplp", with_result=True)
    assert [r["result"]["search"][0]["cett"] for r in rows] == pytest.approx([0.05] * 3)  # --cold-start
    assert cli.main(["track", str(tmp_path / "missing")]) == 2


def test_tracking_during_training(corpus, tmp_path):
    from train_helpers import tiny_dict

    from sparsinglaw.train import TrainConfig, train

    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "tracked", token_budget=1024,
                                          track={"mode": "pplp", "max_tokens": 256}))
    outcome = train(cfg)
    rows = ResultsStore(cfg.run_dir).measurements(metric="pplp")
    assert [r["tokens"] for r in rows] == [c["tokens_seen"] for c in outcome.checkpoints] == [512, 1024]
    assert 0 < outcome.hook_seconds < outcome.seconds
