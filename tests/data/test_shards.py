"""Token shards (``sparsinglaw data``): every document once, in order, on its side of the validation rule;
sequences read across shard files; identical shards after a SIGKILL and a rerun; one-line errors."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, subprocess_env
from sparsinglaw import cli
from sparsinglaw.data import document_split, load_documents
from sparsinglaw.data.shard_writer import ShardSettings, tokenizer_sha256, write_shards
from sparsinglaw.data.shards import MANIFEST, TokenShards, token_dtype
from sparsinglaw.errors import DataError

SMALL = {"shard_tokens": 3000, "batch_documents": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from sparsinglaw.data import builtin_documents

    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    docs = [d[:2500] for d in builtin_documents()[:60]]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(corpus, tmp_path_factory) -> Path:
    from sparsinglaw.data.tokenizer import _save_atomically, train_bpe

    target = tmp_path_factory.mktemp("tok") / "tokenizer"
    _save_atomically(train_bpe(load_documents(corpus), 300), target)
    return target


@pytest.fixture(scope="module")
def reference(corpus, tokenizer_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "ref"
    write_shards(ShardSettings(str(corpus), validation_fraction=0.1, **SMALL), out, tokenizer_path=str(tokenizer_dir),
                 progress=False)
    return out


def expected_stream(docs: list[str], tokenizer) -> np.ndarray:
    ids = [[*tokenizer(d, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id] for d in docs]
    return np.concatenate([np.asarray(x) for x in ids])


def shard_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.bin"))}


def test_every_document_once_in_order_on_its_side(corpus, tokenizer_dir, reference):
    from sparsinglaw.data.tokenizer import load_tokenizer

    shards = TokenShards(reference)
    tokenizer = load_tokenizer(tokenizer_dir)
    assert len(shards.shards) >= 3 and shards.dtype == np.dtype("<u2") and token_dtype(70_000) == "uint32"
    assert shards.tokenizer_sha256 == tokenizer_sha256(tokenizer)
    train_docs, valid_docs = document_split(load_documents(corpus), 0.1)
    totals = shards.manifest["totals"]
    assert (totals["train_documents"], totals["valid_documents"]) == (len(train_docs), len(valid_docs))
    train = np.concatenate([np.fromfile(reference / e["train"], dtype="<u2") for e in shards.shards])
    valid = np.concatenate([np.fromfile(reference / e["valid"], dtype="<u2") for e in shards.shards])
    np.testing.assert_array_equal(train, expected_stream(train_docs, tokenizer))
    np.testing.assert_array_equal(valid, expected_stream(valid_docs, tokenizer))
    # Sequences are cut from the one stream over all shard files, spanning file boundaries.
    seqs = shards.train_sequences(97)
    assert len(seqs) == len(train) // 97
    for i in (0, 1, len(seqs) // 2, len(seqs) - 1):
        np.testing.assert_array_equal(seqs[i], train[i * 97 : (i + 1) * 97])
    np.testing.assert_array_equal(shards.validation_sequences(50, 120), valid[:100].reshape(2, 50))


def test_trained_tokenizer_and_datasets_stream_give_the_same_shards(corpus, tmp_path):
    """No tokenizer given: a BPE trained on the training side (twice: the same one). ``--datasets`` streams a
    local folder through the datasets library: the same documents, so the same shards."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text(corpus.read_text())
    for name, source, via in (("a", corpus, False), ("b", corpus, False), ("c", folder, True)):
        write_shards(ShardSettings(str(source), via_datasets=via, **SMALL), tmp_path / name, vocab_size=300,
                     progress=False)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b") == shard_bytes(tmp_path / "c")
    assert TokenShards(tmp_path / "a").tokenizer_sha256 == TokenShards(tmp_path / "c").tokenizer_sha256


def test_text_and_parquet_files_read_as_load_documents(corpus, tokenizer_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sparsinglaw.data.sources import iter_documents

    docs = load_documents(corpus)
    (tmp_path / "a.txt").write_text("\n\n".join(docs[:30]) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": docs[30:]}), tmp_path / "b.parquet", row_group_size=7)
    assert list(iter_documents(tmp_path / "a.txt")) == load_documents(tmp_path / "a.txt")
    assert list(iter_documents(tmp_path)) == load_documents(tmp_path / "a.txt") + docs[30:]  # sorted files


KILL_SCRIPT = """
import sys, time
from sparsinglaw.data import shard_writer
commit = shard_writer._ShardLoop._commit
def slow_commit(self, end):  # a pause after each shard leaves the test time to kill between two
    commit(self, end)
    time.sleep(0.4)
shard_writer._ShardLoop._commit = slow_commit
from sparsinglaw.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_then_rerun_gives_identical_shards(corpus, tokenizer_dir, reference, tmp_path):
    out = tmp_path / "killed"
    args = ["data", str(corpus), "-o", str(out), "--tokenizer", str(tokenizer_dir), "--validation-fraction", "0.1",
            "--shard-tokens", str(SMALL["shard_tokens"]), "--batch-documents", str(SMALL["batch_documents"])]
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *args], cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "train-00001.bin").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no second shard within 2 minutes"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not json.loads((out / MANIFEST).read_text())["complete"], "the writer was not interrupted"
    with pytest.raises(DataError, match="unfinished"):
        TokenShards(out)
    assert cli.main(args) == 0
    assert shard_bytes(out) == shard_bytes(reference)
    assert json.loads((out / MANIFEST).read_text())["shards"] == json.loads((reference / MANIFEST).read_text())["shards"]


def test_corrupt_or_foreign_directories_get_one_line(corpus, reference, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert cli.main(["data", str(corpus), "-o", str(foreign)]) == 2
    other = tmp_path / "other"  # shards of other settings are not continued with these
    other.mkdir()
    (other / MANIFEST).write_bytes((reference / MANIFEST).read_bytes())
    assert cli.main(["data", str(corpus), "-o", str(other), "--validation-fraction", "0.2"]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in reference.glob("*.bin"):
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / MANIFEST).write_text((reference / MANIFEST).read_text())
    (broken / "train-00001.bin").write_bytes(b"\0" * 10)
    assert cli.main(["train", "tiny", f"run_dir={tmp_path / 'run'}", f"data.source={broken}"]) == 2
    (broken / MANIFEST).write_text("{not json")
    assert cli.main(["train", "tiny", f"run_dir={tmp_path / 'run'}", f"data.source={broken}"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4 and "Traceback" not in err
    assert all(line.startswith(("error:", "INFO", "WARNING")) for line in err.strip().splitlines())
    assert "not a token-shard directory" in err and "written with other settings (" in err and "validation_fraction" in err
    assert "train-00001.bin is corrupt" in err and "manifest.json is corrupt" in err


def test_train_dry_run_counts_the_shards_vocabulary(reference, tmp_path, capsys):
    assert cli.main(["train", "tiny", "--dry-run", f"run_dir={tmp_path / 'run'}", f"data.source={reference}"]) == 0
    assert "vocabulary     300\n" in capsys.readouterr().out  # the tiny preset's own would be 512


def test_token_limits_stop_each_side_and_the_reading(corpus, tokenizer_dir, tmp_path, monkeypatch):
    """A run's shards (``train.data``): the training side ends at the first multiple of
    LIMIT_CHECK_DOCUMENTS training documents holding the limit, the validation side at the first document
    reaching its limit, and no document after both is read; a rerun of an unfinished write continues."""
    from sparsinglaw.data import shard_writer
    from sparsinglaw.data.tokenizer import load_tokenizer

    monkeypatch.setattr(shard_writer, "LIMIT_CHECK_DOCUMENTS", 4)  # 60 documents: 256 would never be reached
    docs, tokenizer = load_documents(corpus), load_tokenizer(tokenizer_dir)
    train_docs, valid_docs = document_split(docs, 0.2)
    train_cum = np.cumsum([len(x) + 1 for x in tokenizer(train_docs, add_special_tokens=False)["input_ids"]])
    valid_cum = np.cumsum([len(x) + 1 for x in tokenizer(valid_docs, add_special_tokens=False)["input_ids"]])
    limit, valid_limit = int(train_cum[9]), int(valid_cum[1]) + 1  # 10 documents reach it: kept 12; 3 valid
    settings = dict(validation_fraction=0.2, shard_tokens=1500, batch_documents=3, train_token_limit=limit,
                    valid_token_limit=valid_limit)
    out = tmp_path / "limited"
    manifest = write_shards(ShardSettings(str(corpus), **settings), out, tokenizer_path=str(tokenizer_dir),
                            progress=False)
    totals, shards = manifest["totals"], TokenShards(out)
    assert (totals["train_documents"], totals["valid_documents"]) == (12, 3) and len(shards.shards) >= 3
    train = np.concatenate([np.fromfile(out / e["train"], dtype="<u2") for e in shards.shards])
    np.testing.assert_array_equal(train, expected_stream(train_docs[:12], tokenizer))
    np.testing.assert_array_equal(shards.validation_sequences(1, 10**6)[:, 0], expected_stream(valid_docs[:3], tokenizer))
    assert shards.shards[-1]["documents_end"] < len(docs)  # the rest of the corpus was not read
    # Unfinished after its first shard: the rerun continues to the same bytes.
    rerun = tmp_path / "rerun"
    shutil.copytree(out, rerun)
    first = json.loads((rerun / MANIFEST).read_text())
    first.update(complete=False, shards=first["shards"][:1])
    first.pop("totals")
    (rerun / MANIFEST).write_text(json.dumps(first))
    for extra in uncommitted_files(rerun, first):
        (rerun / extra).unlink()
    write_shards(ShardSettings(str(corpus), **settings), rerun, tokenizer_path=str(tokenizer_dir), progress=False)
    assert shard_bytes(rerun) == shard_bytes(out)


def uncommitted_files(directory: Path, manifest: dict) -> list[str]:
    kept = {e[side] for e in manifest["shards"] for side in ("train", "valid")}
    return [p.name for p in directory.glob("*.bin") if p.name not in kept]
