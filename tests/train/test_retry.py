"""A failed ``train`` (bad data) leaves no dead end: the corrected retry starts without --force when no
checkpoint exists; once one does, a changed config is refused and the advised --force continues it."""

from __future__ import annotations

import json

from train_helpers import write_config

import sparsinglaw.cli as cli
from sparsinglaw.data.tokenizer import load_tokenizer
from sparsinglaw.store.runs import complete_checkpoints


def _train(config, *extra) -> int:
    return cli.main(["train", str(config), *extra])


def test_the_corrected_retry_of_a_failed_train_starts(corpus, tmp_path, capfd):
    run_dir, short = tmp_path / "run", tmp_path / "short.jsonl"
    short.write_text(json.dumps({"text": "too short to fill one sequence"}) + "\n" * 3, encoding="utf-8")
    bad = write_config(short, run_dir, tmp_path / "bad.toml", data__validation_tokens=0)
    assert _train(bad) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and "too few" in err and "Traceback" not in err
    assert (run_dir / "run.json").is_file() and not complete_checkpoints(run_dir)  # what made the retry refuse
    good = write_config(corpus, run_dir, tmp_path / "good.toml")
    assert _train(good) == 0, capfd.readouterr().err[-2000:]
    assert len(complete_checkpoints(run_dir)) == 3
    assert len(load_tokenizer(run_dir / "tokenizer")) == 300  # trained on the good corpus, not the short text
    # Now a checkpoint exists: an edited config is refused, and the advice (--force) works.
    edited = write_config(corpus, run_dir, tmp_path / "edited.toml", optim__lr=0.002, token_budget=2048)
    capfd.readouterr()
    assert _train(edited) == 2
    refusal = capfd.readouterr().err
    assert "pass --force" in refusal and "optim.lr" in refusal
    assert _train(edited, "--force") == 0
    assert len(complete_checkpoints(run_dir)) == 4
