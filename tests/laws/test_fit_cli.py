"""``sparsinglaw fit`` and ``sparsinglaw widthdepth`` end to end: table, JSON, plots, errors."""

from __future__ import annotations

import argparse
import json

import numpy as np

from sparsinglaw.cli import fit as fit_cli
from sparsinglaw.cli import main
from sparsinglaw.cli import widthdepth as wd_cli
from sparsinglaw.laws import LawFitError


def _run(argv: list[str]) -> int:
    """Run a laws subcommand without importing every other subcommand (main() is used for exit codes)."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    fit_cli.register(sub)
    wd_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_fit_auto_writes_json_and_plot(data_dir, tmp_path, capsys):
    out, plots = tmp_path / "fit.json", tmp_path / "plots"
    code = _run(["fit", str(data_dir / "0.4b_relu.json"), "--n-boot", "10", "--output", str(out),
                 "--plot", str(plots), "--predict-at", "1e12", "--within", "0.001"])
    assert code == 0
    text = capsys.readouterr().out
    assert "relu*" in text and "limit not identified" in text and "indicative only" in text
    doc = json.loads(out.read_text())
    entry = doc["curves"][0]
    assert entry["preferred"] == "relu" and {f["law"] for f in entry["fits"]} == {"relu", "silu", "log", "sigmoid"}
    relu = next(f for f in entry["fits"] if f["law"] == "relu")
    assert set(relu["params"]) == {"alpha", "b", "c", "A0"} and relu["limit"]["identified"] is False
    assert "A0" in relu["intervals"] and "mae" in relu and "mse" in relu
    assert entry["predictions"][0]["tokens"] == 1e12 and entry["within"][0]["limit_identified"] is False
    assert doc["provenance"]["config"]["law"] == "auto"
    png = plots / "0.4b_relu.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_single_law_csv_with_skip(tmp_path, capsys):
    d = np.linspace(3, 150, 30)
    a = 0.385 - 0.27 * d**-0.9
    path = tmp_path / "run.csv"
    path.write_text("tokens,activation_ratio\n" + "\n".join(f"{x * 1e9:.0f},{y}" for x, y in zip(d, a, strict=True)))
    out = tmp_path / "o.json"
    assert _run(["fit", str(path), "--law", "silu", "--interval", "profile", "--skip-fraction", "0.1",
                 "--backtest", "0.5", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "silu" in text and "3 warmup points skipped" in text and "0.3850" in text and "back-test silu" in text
    assert json.loads(out.read_text())["curves"][0]["backtest"]["test_points"] == 15


def test_fit_scale_across_models(data_dir, tmp_path, capsys):
    files = [str(data_dir / f"{s}_silu.json") for s in ("0.1b", "0.2b")]
    out = tmp_path / "s.json"
    assert _run(["fit", *files, "--law", "paper", "--interval", "profile", "--scale", "--output", str(out)]) == 0
    assert "== scale" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["scale"]["models"]) == 2


def test_fit_errors_exit_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"token_passed": [3e9, 2e9, 1e9], "activation_ratio": [0.1, 0.2, 0.3]}))
    assert main(["fit", str(bad)]) == 2
    assert "not sorted" in capsys.readouterr().err
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"token_passed": [1e9, 2e9], "activation_ratio": [0.1, 0.09]}))
    assert main(["fit", str(short), "--interval", "none"]) == 2
    err = capsys.readouterr().err
    assert "no law could be fitted" in err and "relu" in err
    assert main(["fit", str(short), "--law", "relu"]) == 2
    assert "law relu" in capsys.readouterr().err
    unknown = tmp_path / "x.bin"
    unknown.write_bytes(b"\x00\x01")
    assert main(["fit", str(unknown)]) == 2
    assert "unknown format" in capsys.readouterr().err
    assert main(["fit", str(short), "--law", "paper"]) == 2  # activation unknown
    assert "--law" in capsys.readouterr().err


def test_widthdepth_command(tmp_path, capsys):
    r = np.array([128 / 575, 256 / 144, 384 / 64, 512 / 36, 768 / 16, 896 / 12, 1024 / 9, 1152 / 7, 1280 / 6,
                  1408 / 5, 1536 / 4, 1792 / 3, 2048 / 2])
    a0 = 0.08 + 0.0004 * np.minimum(r - 114, 0)
    loss = 3 + 0.02 * np.log(r / 150) ** 2
    path = tmp_path / "sweep.csv"
    path.write_text("ratio,a0,loss\n" + "\n".join(f"{x},{y},{z}" for x, y, z in zip(r, a0, loss, strict=True)))
    out = tmp_path / "wd.json"
    assert _run(["widthdepth", str(path), "--n-boot", "50", "--output", str(out), "--plot", str(tmp_path / "h.png")]) == 0
    assert "bottleneck r_b" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert abs(doc["hinge"]["bottleneck"] - 114) < 5 and doc["loss_range"]["low"] < 150


def test_one_bad_curve_among_several_is_reported(data_dir, tmp_path, capsys):
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"token_passed": [1e9, 2e9], "activation_ratio": [0.1, 0.09]}))
    out = tmp_path / "o.json"
    try:
        _run(["fit", str(data_dir / "0.2b_silu.json"), str(short), "--interval", "none", "--output", str(out)])
    except LawFitError as err:
        assert "1 of 2 curves could not be fitted: short" in str(err)
    else:
        raise AssertionError("expected LawFitError")
    assert "FAILED" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [c["curve"] for c in doc["curves"]] == ["0.2b_silu"] and "short" in doc["failed"]


def test_fit_paper_curve_beside_its_published_fit(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert _run(["fit", "--paper", "0.1b_relu", "--law", "relu", "--interval", "none", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "== 0.1b_relu" in text and "published relu: alpha=0.101, b=-0.0151, c=3.2, A0=0.0614" in text
    entry = json.loads(out.read_text())["curves"][0]
    assert entry["published"]["params"]["A0"] == 0.0614
    assert abs(entry["published"]["mae_on_points"] - 4.07e-4) < 1e-6  # the paper's reported MAE
    assert entry["fits"][0]["mae"] <= 1.05 * entry["published"]["mae_on_points"]


def test_fit_paper_list_all_and_errors(tmp_path, capsys):
    assert _run(["fit", "--paper", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and lines[1].startswith("0.1b_relu") and "alpha=0.101" in lines[1]
    assert "(+1 earlier)" in lines[-1]
    out = tmp_path / "s.json"
    assert _run(["fit", "--paper", "0.1b_silu", "--paper", "0.2B_SiLU", "--paper", "0.1b_silu", "--law", "paper",
                 "--interval", "profile", "--scale", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [c["curve"] for c in doc["curves"]] == ["0.1b_silu", "0.2b_silu"] and len(doc["scale"]["models"]) == 2
    capsys.readouterr()
    assert main(["fit", "--paper", "9b_gelu"]) == 2
    assert "unknown paper curve '9b_gelu'; known: 0.1b_relu" in capsys.readouterr().err
    assert main(["fit"]) == 2
    assert "--paper list" in capsys.readouterr().err
