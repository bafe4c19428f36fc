"""A run on a corpus (not on shards) writes its tokens once into RUN_DIR/data/shards and reads them there
through the same reader as ``data.source=SHARD_DIR``; a run from before shards (its ``.npy`` cache) is
converted to the same sequences and resumes to the weights a fresh run reaches."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from sparsinglaw.data import document_split, load_documents
from sparsinglaw.data.shards import TokenShards
from sparsinglaw.data.tokenizer import load_tokenizer
from sparsinglaw.store.runs import read_data_meta, run_validation_sequences
from sparsinglaw.train import load_config, train

LEGACY = Path(__file__).resolve().parents[1] / "data" / "train_run_v1"  # made by the .npy code (see below)


def token_stream(docs: list[str], tokenizer) -> np.ndarray:
    return np.concatenate([[*tokenizer(d, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
                           for d in docs])


def test_a_corpus_run_trains_from_its_own_shards(corpus, finished_run):
    from sparsinglaw.track.tracker import validation_data

    cfg, outcome = finished_run
    data_dir = Path(cfg.run_dir) / "data"
    meta, shards = read_data_meta(cfg.run_dir), TokenShards(data_dir / "shards")
    assert meta["shards"] == "shards" and not list(data_dir.glob("*.npy"))  # relative: the run dir may move
    # 40 documents (fewer than one 256-document check): the whole training side, in corpus order.
    tokenizer = load_tokenizer(Path(cfg.run_dir) / "tokenizer")
    train_docs, valid_docs = document_split(load_documents(corpus), cfg.data.validation_fraction)
    train = np.concatenate([np.fromfile(data_dir / "shards" / e["train"], dtype="<u2") for e in shards.shards])
    np.testing.assert_array_equal(train, token_stream(train_docs, tokenizer))
    sequences = shards.train_sequences(cfg.seq_len)
    assert meta["train_sequences"] == len(sequences) == len(train) // cfg.seq_len
    assert outcome.checkpoints[-1]["epochs"] == meta["epochs"] == cfg.token_budget / (len(sequences) * cfg.seq_len)
    # Validation: the first validation_tokens // seq_len sequences of the validation documents, for tracking too.
    valid = token_stream(valid_docs, tokenizer)[: cfg.data.validation_tokens].reshape(-1, cfg.seq_len)
    np.testing.assert_array_equal(validation_data(cfg.run_dir, 10_000).input_ids.numpy(), valid)


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(path) / "model.safetensors"))


def test_a_run_from_before_shards_is_converted_and_trains_as_a_fresh_run(tmp_path, caplog):
    """tests/data/train_run_v1: a run started (and stopped before its first checkpoint) by the code that
    cached ``train.npy``/``valid.npy`` (the shipped corpus, 3 documents, the tiny shape). When the cache gave
    way to shards, that code's finished run and this code's fresh one had weights of the same sha256."""
    run_dir = tmp_path / "legacy"
    shutil.copytree(LEGACY, run_dir)
    old_train, old_valid = np.load(run_dir / "data" / "train.npy"), np.load(run_dir / "data" / "valid.npy")
    np.testing.assert_array_equal(run_validation_sequences(run_dir), old_valid)  # tracking it as it is
    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        resumed = train(load_config(run_dir / "run.toml", [f"run_dir={run_dir}"]))
    assert any("converting" in r.getMessage() for r in caplog.records)  # not tokenized again
    shards = TokenShards(run_dir / "data" / "shards")
    converted = shards.train_sequences(32)
    np.testing.assert_array_equal(np.stack([converted[i] for i in range(len(converted))]), old_train)
    np.testing.assert_array_equal(run_validation_sequences(run_dir), old_valid)
    assert not list((run_dir / "data").glob("*.npy"))
    fresh = train(load_config(run_dir / "run.toml", [f"run_dir={tmp_path / 'fresh'}"]))
    assert resumed.eval_loss == fresh.eval_loss and resumed.tokens_seen == fresh.tokens_seen == 1536
    ours, theirs = weights(resumed.checkpoints[-1]["path"]), weights(fresh.checkpoints[-1]["path"])
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
