"""The measure / pareto / demo commands end to end on a tiny saved model, and their bad-input errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("tiny"), hidden_act="relu")


def run_cli(*args) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess: exit code, stdout and stderr as a user sees them."""
    return subprocess.run([sys.executable, "-m", "sparsinglaw", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_measure_pplp_writes_table_json_and_heatmap(model_dir, tmp_path, capsys):
    out, heat = tmp_path / "r.json", tmp_path / "map.png"
    code = main(["measure", "--model", str(model_dir), "--metric", "pplp", "--p", "1", "--seq-len", "64",
                 "--max-tokens", "512", "--output", str(out), "--heatmap", str(heat), "--frequency-plot",
                 str(tmp_path / "freq.png"), "--start-cett", "0.1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "PPL ratio" in printed and "threshold t_l" in printed
    result = json.loads(out.read_text())
    assert result["solution"]["method"] == "trend" and result["solution"]["converged"]
    # The table's PPL ratio is the pass nearest the answer: the trend there, within the scatter.
    sol = result["solution"]
    nearest = min(result["search"], key=lambda q: abs(math.log(q["cett"] / sol["cett"])))
    trend_there = math.exp(math.log(1.01) * (nearest["cett"] / sol["cett"]) ** sol["slope"])
    assert nearest["ppl_ratio"] == pytest.approx(result["ppl_ratio"], rel=1e-12)  # (one pass, two roundings)
    assert abs(result["ppl_ratio"] - trend_there) <= 4 * sol["noise_sd"] + 2 * sol["standard_error"]
    assert result["search"][0]["cett"] == pytest.approx(0.1)  # --start-cett
    assert "trend crosses 1.0100 at CETT" in printed
    assert len(result["layers"]) == 2 and all(layer["threshold"] > 0 for layer in result["layers"])
    assert heat.stat().st_size > 1000 and (tmp_path / "freq.png").stat().st_size > 1000
    assert len(result["token_detail"]["tokens"]) == 48


@pytest.mark.parametrize("flags", [["--metric", "cett", "--cett", "0.2"], ["--metric", "fat", "--epsilon", "0.01"],
                                   ["--metric", "topk", "--ratio", "0.1"], ["--metric", "zero"]])
def test_measure_each_metric(model_dir, tmp_path, flags):
    out = tmp_path / "r.json"
    assert main(["measure", "--model", str(model_dir), *flags, "--seq-len", "64", "--max-tokens", "256",
                 "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert 0 < result["activation_ratio"] <= 1


def test_pareto_writes_points_and_plot(model_dir, tmp_path, capsys):
    out, plot = tmp_path / "p.json", tmp_path / "p.png"
    assert main(["pareto", "--model", str(model_dir), "--seq-len", "64", "--max-tokens", "256",
                 "--values", "cett=0.05,0.2", "--values", "topk=0.2,0.5", "--values", "fat=0.01,0.1",
                 "--output", str(out), "--plot", str(plot), "--json"]) == 0
    points = json.loads(out.read_text())["points"]
    assert {p["metric"] for p in points} == {"cett", "topk", "fat", "zero"}
    assert plot.stat().st_size > 1000
    assert json.loads(capsys.readouterr().out)["points"] == points  # --json: the same document on stdout


def test_pareto_figure_zooms_on_the_target_and_names_model_and_data(model_dir, tmp_path):
    """Issue 32: a linear PPL-ratio axis zoomed around the PPL-p% target line (not a log axis to 500), titled
    with the model's and data's names (not a path cut at both edges)."""
    from sparsinglaw.cli.pareto import plot_title
    from sparsinglaw.report.figures import pareto_figure

    data = tmp_path / "deep" / "folder" / "my.txt"
    data.parent.mkdir(parents=True)
    data.write_text("text")
    points = [{"metric": "cett", "value": v, "activation_ratio": a, "ppl_ratio": r}
              for v, a, r in ((0.05, 0.8, 1.004), (0.2, 0.5, 1.03), (0.5, 0.2, 3.0), (0.9, 0.05, 480.0))]
    title = plot_title(str(model_dir), str(data), 4096)
    assert title.startswith(f"{model_dir.name} on my.txt (4,096 tokens)") and str(tmp_path) not in title
    assert plot_title("org/hub-model", "builtin", 512).startswith("org/hub-model on the built-in corpus")
    ax = pareto_figure(points, title, p=2.0).axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[1] == pytest.approx(1.10)
    targets = [line for line in ax.get_lines() if list(line.get_ydata()) == [1.02, 1.02]]
    assert len(targets) == 1 and "PPL-2% target" in targets[0].get_label()
    assert ax.get_xlim()[0] == pytest.approx(0.45)  # zoomed to the points on the axis
    assert any("2 setting(s) above" in t.get_text() for t in ax.texts)


@pytest.mark.parametrize("args,message", [
    (["--model", "/nope/model"], "does not exist"),
    (["--p", "0"], "p=0"),
    (["--p", "-1"], "p=-1"),
    (["--metric", "cett", "--cett", "1.5"], "cett=1.5"),
    (["--start-cett", "1.5"], "start_cett=1.5"),
    (["--metric", "topk", "--ratio", "0"], "ratio=0"),
    (["--metric", "topk", "--ratio", "1.5"], "ratio=1.5"),
    (["--data", "/nope.txt"], "does not exist"),
    (["--seq-len", "200", "--max-tokens", "400", "--data", "SHORT"], "fewer than one sequence"),
    (["--max-tokens", "10"], "smaller than one sequence"),
])
def test_bad_input_is_one_line_and_non_zero(model_dir, tmp_path, capsys, args, message):
    short = tmp_path / "short.txt"
    short.write_text("only a few words here")
    args = [str(short) if a == "SHORT" else a for a in args]
    code = main(["measure", "--model", str(model_dir), "--seq-len", "64", "--max-tokens", "256", *args])
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_entry_point_prints_one_line_errors_without_traceback(tmp_path, model_dir):
    """The installed console entry point, in a subprocess, as a user runs it."""
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    done = run_cli("measure", "--model", model_dir, "--data", empty)
    assert done.returncode == 2 and "no text" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    done = run_cli("measure", "--model", tmp_path / "bert")
    assert done.returncode == 2 and "causal" in done.stderr and "Traceback" not in done.stderr


def test_measure_under_torchrun_with_two_processes_matches_one(model_dir, tmp_path):
    """`torchrun --nproc_per_node 2 -m sparsinglaw measure`: sharded batches, all-reduced sums (gloo)."""
    common = ["--model", str(model_dir), "--metric", "cett", "--cett", "0.1", "--seq-len", "64", "--max-tokens", "512",
              "--batch-size", "2"]
    assert main(["measure", *common, "--output", str(tmp_path / "one.json")]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "sparsinglaw",
         "measure", *common, "--output", str(tmp_path / "two.json")],
        capture_output=True, text=True, timeout=600, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert two["activation_ratio"] == pytest.approx(one["activation_ratio"], abs=1e-9)
    assert two["ppl_ratio"] == pytest.approx(one["ppl_ratio"], rel=1e-9)
    assert done.stdout.count("PPL ratio") == 1  # only the main process prints


@pytest.mark.parametrize("flag, value", [("--p", "1e9"), ("--p", "0"), ("--tolerance", "nan"), ("--tolerance", "-1"),
                                         ("--start-cett", "1.5"), ("--start-cett", "0")])
def test_impossible_pplp_settings_exit_2_with_one_line_before_loading(flag, value, tmp_path, capsys):
    code = main(["measure", "--model", str(tmp_path / "no-such-model"), "--metric", "pplp", flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and flag.lstrip("-").replace("-", "_") in err[0]


def test_cli_metric_choices_are_the_registered_metrics_and_help_needs_no_torch():
    from sparsinglaw.cli import measure as measure_cli
    from sparsinglaw.metrics import metric_names

    assert sorted(measure_cli.METRICS) == sorted(metric_names())
    code = ("import sys; from sparsinglaw.cli import main\n"
            "try:\n    main(['measure', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'measure --help imported torch'\n"
            "main(['--version'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--solution" in done.stdout and "sparsinglaw 0.1.0" in done.stdout, done.stderr


def test_measure_json_with_progress_in_a_log_file(model_dir):
    """stderr not a terminal (a log file, a pipe): progress as log lines, no bar redraws, no library bars;
    --json leaves the machine form alone on stdout."""
    proc = run_cli("measure", "--model", model_dir, "--metric", "cett", "--seq-len", "64", "--max-tokens", "512",
                   "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["metric"] == "cett" and 0 < result["activation_ratio"] < 1
    assert "INFO: dense pass: 100% (512/512 tok)" in proc.stderr
    assert "\r" not in proc.stderr and "%|" not in proc.stderr  # neither tqdm's nor transformers' bars
