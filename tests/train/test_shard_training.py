"""Training on token shards (``data.source=SHARD_DIR``): sequences read from disk in the seeded order, epochs
recorded, bit-identical weights after a SIGKILL and a resume, DDP ranks on the same global batches as one
process, and tracking's validation tokens read from the same shards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import PYTHON, REPO, kill_after_checkpoint, subprocess_env, tiny_dict

from sparsinglaw.data.shard_writer import ShardSettings, write_shards
from sparsinglaw.data.shards import TokenShards
from sparsinglaw.train import TrainConfig, train

STEPS, EVERY = 12, 4


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory):
    """16 short documents (about 800 training tokens: the 1,536-token runs cycle them) in several shards."""
    folder = tmp_path_factory.mktemp("shards")
    small = folder / "small.jsonl"
    docs = [json.loads(line)["text"][:200] for line in corpus.read_text().splitlines()[:16]]
    small.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    out = folder / "corpus"
    write_shards(ShardSettings(str(small), validation_fraction=0.3, shard_tokens=300, batch_documents=2), out,
                 vocab_size=300, progress=False)
    assert len(TokenShards(out).shards) >= 2
    return out


def shard_config(shards, run_dir, **changes) -> dict:
    return tiny_dict(shards, run_dir, **changes)


@pytest.fixture(scope="module")
def shard_run(shards, tmp_path_factory):
    cfg = TrainConfig.from_dict(shard_config(shards, tmp_path_factory.mktemp("runs") / "shards"))
    return cfg, train(cfg)


def test_training_reads_shards_in_the_seeded_order_and_records_epochs(shards, shard_run):
    from sparsinglaw.store.runs import read_data_meta
    from sparsinglaw.track.tracker import validation_data
    from sparsinglaw.train.data import OrderedTrainData

    cfg, outcome = shard_run
    assert [c["step"] for c in outcome.checkpoints] == list(range(EVERY, STEPS + 1, EVERY))
    assert outcome.checkpoints[-1]["eval_loss"] < outcome.checkpoints[0]["eval_loss"]
    sequences, meta = TokenShards(shards).train_sequences(cfg.seq_len), read_data_meta(cfg.run_dir)
    assert meta["shards"] == str(shards.resolve()) and meta["train_sequences"] == len(sequences)
    assert not list((Path(cfg.run_dir) / "data").glob("*.npy"))  # no copy of the corpus in the run
    # 1,536 tokens over a training side of len(sequences) x 32 tokens: the epochs each checkpoint reached.
    epochs = [c["epochs"] for c in outcome.checkpoints]
    assert epochs == pytest.approx([c["tokens_seen"] / (len(sequences) * 32) for c in outcome.checkpoints])
    assert epochs[-1] > 1 and meta["epochs"] == pytest.approx(epochs[-1])  # the corpus is cycled, in epochs
    # Position i of the run is permutation(seed, i // n)[i % n], read from the memory-mapped shards.
    data = OrderedTrainData(sequences, 2 * len(sequences), seed=0)
    first_epoch = {data.index(i) for i in range(len(sequences))}
    assert first_epoch == set(range(len(sequences)))
    np.testing.assert_array_equal(data[len(sequences) + 3]["input_ids"].numpy(), sequences[data.index(len(sequences) + 3)])
    # Tracking evaluates on the validation sequences of the same shards.
    valid = validation_data(cfg.run_dir, 256).input_ids
    np.testing.assert_array_equal(valid.numpy(), TokenShards(shards).validation_sequences(32, 256))


def weights(path):
    return load_file(str(Path(path) / "model.safetensors"))


def test_sigkill_then_resume_on_shards_is_bit_identical(shards, shard_run, tmp_path):
    run_dir = tmp_path / "killed"
    config = tmp_path / "run.toml"
    TrainConfig.from_dict(shard_config(shards, run_dir)).save(config)
    kill_after_checkpoint(config, run_dir, EVERY, STEPS)
    outcome = train(TrainConfig.from_dict(shard_config(shards, run_dir)))
    reference = shard_run[1]
    assert outcome.tokens_seen == reference.tokens_seen and outcome.eval_loss == reference.eval_loss
    ours, theirs = weights(outcome.checkpoints[-1]["path"]), weights(reference.checkpoints[-1]["path"])
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_torchrun_two_ranks_on_shards_match_one_process(shards, tmp_path):
    """2 gloo ranks x 2 sequences per step read disjoint halves of each global batch of 4: the weights
    equal one process's on the same 4 sequences per step."""
    run_dir = tmp_path / "ddp"
    config = tmp_path / "ddp.toml"
    TrainConfig.from_dict(shard_config(shards, run_dir, batch_size=2, token_budget=768,
                                       checkpoint_every_tokens=384)).save(config)
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sparsinglaw.cli.train", str(config), "--json"]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["tokens_seen"] == 768
    single = train(TrainConfig.from_dict(shard_config(shards, tmp_path / "one", batch_size=4, token_budget=768,
                                                      checkpoint_every_tokens=384)))
    ddp, one = weights(run_dir / "checkpoint-6"), weights(single.run_dir / "checkpoint-6")
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-5)


def test_dataloader_workers_read_the_same_batches(shards):
    """``dataloader_workers`` > 0: the dataset is pickled to worker processes, which open their own maps."""
    from torch.utils.data import DataLoader
    from transformers import default_data_collator

    from sparsinglaw.train.data import OrderedTrainData

    sequences = TokenShards(shards).train_sequences(32)
    sequences[0]  # maps opened here are not pickled (a copy of the data would be)
    data = OrderedTrainData(sequences, 3 * len(sequences), seed=1)
    batches = [[b["input_ids"] for b in DataLoader(data, batch_size=4, num_workers=workers,
                                                   collate_fn=default_data_collator)] for workers in (0, 2)]
    assert len(batches[0]) == len(batches[1]) > 0
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))
