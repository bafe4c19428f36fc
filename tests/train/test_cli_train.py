"""``sparsinglaw train``: dry-run output, one-line errors, and a 2-process DDP run under torchrun (gloo)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import PYTHON, REPO, subprocess_env, tiny_dict, write_config

import sparsinglaw.cli as cli
from sparsinglaw.store.runs import complete_checkpoints
from sparsinglaw.train import TrainConfig, train


@pytest.fixture(autouse=True)
def _train_subcommand(monkeypatch):
    # Until ``train`` is listed in cli.SUBCOMMANDS, add it here so the dispatcher is what is tested.
    if "train" not in cli.SUBCOMMANDS:
        monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, "train"))


def test_dry_run_prints_config_shape_and_parameters(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code = cli.main(["train", "paper", "--dry-run", f"run_dir={run_dir}", "model.activation=silu",
                     "model.ratio=114"])
    out = capsys.readouterr().out
    assert code == 0
    assert 'activation = "silu"' in out and "ratio = 114.0" in out  # resolved config, as TOML
    assert "d=1024 L=9 d_f=2560" in out  # shape from N = 1.1e8, r = 114
    assert "non-embedding 108,547,072 (paper formula 108,527,616)" in out
    assert "GraniteForCausalLM" in out and "steps" in out
    assert not run_dir.exists()  # a dry run creates nothing


def test_options_may_come_before_or_after_overrides(capsys, tmp_path):
    assert cli.main(["train", "--dry-run", "tiny", "model.activation=gelu"]) == 0
    assert cli.main(["train", "tiny", "model.activation=gelu", "--dry-run"]) == 0
    assert capsys.readouterr().out.count('activation = "gelu"') == 2


def test_bad_value_is_one_line_error_before_any_work(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code = cli.main(["train", "tiny", f"run_dir={run_dir}", "model.activation=swish"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "model.activation='swish'" in err and "Traceback" not in err
    assert not run_dir.exists()


def test_torchrun_two_cpu_processes_ddp(corpus, tmp_path):
    """DDP over gloo: 2 ranks x 4 sequences per step, the same global batches as 1 rank x 8 sequences."""
    run_dir = tmp_path / "ddp"
    config = write_config(corpus, run_dir, tmp_path / "ddp.toml", batch_size=2, token_budget=768,
                          checkpoint_every_tokens=384)
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sparsinglaw.cli.train", str(config), "--json"]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["world_size"] == 2 and info["world_tokens_per_step"] == 128
    done = complete_checkpoints(run_dir)
    assert [c["step"] for c in done] == [3, 6] and [c["tokens_seen"] for c in done] == [384, 768]
    summary = json.loads(proc.stdout)  # --json: stdout holds the summary alone (rank 0's)
    assert summary["tokens_seen"] == 768
    # The same global batches on one process (4 sequences per step) give the same weights.
    single = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "single", batch_size=4, token_budget=768,
                                                   checkpoint_every_tokens=384)))
    assert single.tokens_seen == 768
    ddp = load_file(str(run_dir / "checkpoint-6" / "model.safetensors"))
    one = load_file(str(tmp_path / "single" / "checkpoint-6" / "model.safetensors"))
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-5)


def test_dry_run_gives_the_study_estimate(tmp_path, capsys):
    """train --dry-run prints the training-time estimate study --dry-run gives, for the same cell."""
    import json

    from sparsinglaw.cli import main as cli_main
    from sparsinglaw.study.config import PRESETS, cell_flops, estimate

    study = PRESETS["demo"]().merge(["threads=1", "jobs=1"])  # one cell at a time, as one train run
    cell = study.cells()[0]
    config = cell.train_config().to_file(tmp_path / "cell.toml")
    # The study trains its tokenizer before the cells; without it the plan counts the configured vocabulary, as the
    # study estimate does.
    assert cli_main(["train", str(config), "tokenizer.path=none", "--dry-run", "--json", "--threads", "1"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    one_cell = estimate(study)["train_hours"] * cell_flops(cell) / estimate(study)["train_flops"]
    assert plan["estimate"]["train_flops"] == pytest.approx(cell_flops(cell))
    assert plan["estimate"]["train_hours"] == pytest.approx(one_cell)
    assert cli_main(["train", str(config), "tokenizer.path=none", "--dry-run", "--threads", "1"]) == 0
    assert "as study --dry-run estimates" in capsys.readouterr().out
