"""Tiny training runs: standard checkpoints with tokens recorded, exact resume after SIGKILL, run-dir guard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import kill_after_checkpoint, tiny_dict, write_config

from sparsinglaw.errors import ConfigError
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import MARKER
from sparsinglaw.train import TrainConfig, train

STEPS, EVERY, TOKENS_PER_STEP = 12, 4, 128


def weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(checkpoint) / "model.safetensors"))


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_checkpoints_are_standard_transformers_dirs(finished_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, outcome = finished_run
    steps = [c["step"] for c in outcome.checkpoints]
    assert steps == list(range(EVERY, STEPS + 1, EVERY))
    assert outcome.tokens_seen == STEPS * TOKENS_PER_STEP
    for info in outcome.checkpoints:
        assert info["tokens_seen"] == info["step"] * TOKENS_PER_STEP
        assert info["train_loss"] is not None and info["eval_loss"] is not None
    last = outcome.checkpoints[-1]["path"]
    model = AutoModelForCausalLM.from_pretrained(last)
    tokenizer = AutoTokenizer.from_pretrained(last)
    ids = tokenizer("def f(x): return x", return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(input_ids=ids, labels=ids).loss)
    assert model.config.hidden_act == "relu" and model.config.model_type == "llama"
    # Training lowered the validation loss.
    assert outcome.checkpoints[-1]["eval_loss"] < outcome.checkpoints[0]["eval_loss"]


def test_results_store_holds_checkpoints_and_losses(finished_run):
    cfg, outcome = finished_run
    store = ResultsStore(cfg.run_dir)
    run_id = outcome.checkpoints[0]["run_id"]
    assert [c["tokens"] for c in store.checkpoints(run_id)] == [c["tokens_seen"] for c in outcome.checkpoints]
    losses = store.measurements(run_id, metric="eval_loss")
    assert [r["value"] for r in losses] == pytest.approx([c["eval_loss"] for c in outcome.checkpoints])
    (run,) = store.runs()
    assert run["config"]["model"]["activation"] == "relu" and "versions" in run["provenance"]


def test_sigkill_then_restart_gives_the_uninterrupted_result(corpus, finished_run, tmp_path):
    run_dir = tmp_path / "killed"
    config = write_config(corpus, run_dir, tmp_path / "run.toml")
    kill_after_checkpoint(config, run_dir, EVERY, STEPS)

    outcome = train(TrainConfig.from_dict(tiny_dict(corpus, run_dir)))
    reference = finished_run[1]
    assert outcome.tokens_seen == reference.tokens_seen
    assert outcome.eval_loss == reference.eval_loss and outcome.train_loss == reference.train_loss
    assert_same_weights(outcome.checkpoints[-1]["path"], reference.checkpoints[-1]["path"])


def test_half_written_checkpoint_is_skipped_and_redone(corpus, finished_run, tmp_path):
    cfg, reference = finished_run
    run_dir = tmp_path / "half"
    shutil.copytree(cfg.run_dir, run_dir)
    for step in (8, 12):
        shutil.rmtree(run_dir / f"checkpoint-{step}")
    # A kill while checkpoint-8 was being written: files present, optimizer missing, no marker.
    shutil.copytree(run_dir / "checkpoint-4", run_dir / "checkpoint-8")
    (run_dir / "checkpoint-8" / MARKER).unlink()
    (run_dir / "checkpoint-8" / "optimizer.pt").unlink()
    outcome = train(TrainConfig.from_dict(tiny_dict(corpus, run_dir)))
    assert [c["step"] for c in outcome.checkpoints] == [4, 8, 12]
    for a, b in zip(outcome.checkpoints, reference.checkpoints):
        assert_same_weights(a["path"], b["path"])


def test_run_dir_of_another_config_is_refused_unless_forced(corpus, finished_run, tmp_path):
    cfg, _ = finished_run
    run_dir = tmp_path / "other"
    shutil.copytree(cfg.run_dir, run_dir)
    before = sorted(p.name for p in run_dir.iterdir())
    other = TrainConfig.from_dict(tiny_dict(corpus, run_dir, model__activation="silu"))
    with pytest.raises(ConfigError, match=r"different config \(differs in model.activation\).*--force"):
        train(other)
    assert sorted(p.name for p in run_dir.iterdir()) == before
    # Same result-determining config, other bookkeeping: accepted.
    train(TrainConfig.from_dict(tiny_dict(corpus, run_dir, log_every_steps=3)))
    train(other, force=True)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["fingerprint"] == other.fingerprint()
    assert (run_dir / f"run.{cfg.fingerprint()}.toml").is_file()


def test_tensorboard_events_are_written_when_installed(corpus, tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard logging is optional; the dev extras install it")
    settings = tiny_dict(corpus, tmp_path / "tb")
    settings.update(tensorboard=True, token_budget=4 * TOKENS_PER_STEP)
    cfg = TrainConfig.from_dict(settings)
    train(cfg)
    events = list((Path(cfg.run_dir) / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and max(e.stat().st_size for e in events) > 100


def test_run_dir_resumes_with_its_paths_spelled_relative_or_absolute(corpus, tmp_path, monkeypatch):
    from sparsinglaw.train.checkpoints import guard_run_dir

    monkeypatch.chdir(corpus.parent)
    relative = TrainConfig.from_dict(tiny_dict(Path(corpus.name), tmp_path / "run"))
    guard_run_dir(relative, force=False, world_size=1)
    (tmp_path / "run" / "checkpoint-4").mkdir()  # trained: a run without checkpoints takes any config
    monkeypatch.chdir(tmp_path)  # run.toml holds "docs.jsonl"; from here that names nothing: refused
    with pytest.raises(ConfigError, match=r"differs in data.source"):
        guard_run_dir(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run")), force=False, world_size=1)
    monkeypatch.chdir(corpus.parent)
    guard_run_dir(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run")), force=False, world_size=1)
