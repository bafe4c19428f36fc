"""Training data: validation shares no document with training; the data order is fixed; tokenizer reuse."""

from __future__ import annotations

import numpy as np
from train_helpers import tiny_dict

from sparsinglaw.data.tokenizer import load_tokenizer
from sparsinglaw.train import TrainConfig
from sparsinglaw.train.data import OrderedTrainData, split_documents
from sparsinglaw.train.trainer import prepare


def test_validation_shares_no_documents(corpus, tmp_path):
    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run"))
    train_docs, valid_docs = split_documents(cfg.data)
    assert train_docs and valid_docs and not set(train_docs) & set(valid_docs)
    assert len(train_docs) + len(valid_docs) == 40


def test_order_is_a_seeded_permutation_per_epoch():
    seqs = np.arange(20, dtype=np.int64).reshape(10, 2)
    data = OrderedTrainData(seqs, length=25, seed=3)
    order = [data.index(i) for i in range(25)]
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert order[:10] != order[10:20]  # each epoch reshuffled
    assert order == [OrderedTrainData(seqs, 25, 3).index(i) for i in range(25)]  # reproducible
    assert order != [OrderedTrainData(seqs, 25, 4).index(i) for i in range(25)]


def test_existing_tokenizer_is_reused(corpus, finished_run, tmp_path):
    cfg, _ = finished_run
    source = f"{cfg.run_dir}/tokenizer"
    other = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "reuse", tokenizer__path=source,
                                            tokenizer__vocab_size=999))
    prep = prepare(other)
    assert len(prep.tokenizer) == 300  # the saved tokenizer's vocabulary, not a newly trained one
    assert prep.tokenizer.get_vocab() == load_tokenizer(source).get_vocab()
    assert prep.train_sequences.seq_len == 32 and prep.valid_sequences.shape == (8, 32)


def test_streaming_a_datasets_directory(corpus, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text(corpus.read_text())
    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run", data__source=str(folder), data__streaming=True))
    train_docs, valid_docs = split_documents(cfg.data, max_chars=20_000)
    assert 20_000 <= sum(map(len, train_docs)) < 20_000 + 3000  # stopped once the limit was reached
    assert valid_docs and not set(train_docs) & set(valid_docs)
    # The same document lands on the same side as in the non-streaming split.
    full_train, full_valid = split_documents(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r2")).data)
    assert set(train_docs) <= set(full_train) and set(valid_docs) <= set(full_valid)
