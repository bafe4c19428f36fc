"""Corpora and packing: the built-in corpus, text and JSONL files, splits, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from sparsinglaw.data import build_eval_data, builtin_documents, document_split, load_documents
from sparsinglaw.errors import DataError


class ByteTokenizer:
    """Minimal tokenizer: one token per UTF-8 byte, EOS = 256."""

    eos_token_id = 256

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(text.encode("utf-8"))}


def test_builtin_corpus_is_real_english_and_deterministic():
    docs = builtin_documents()
    assert len(docs) > 100
    assert sum(map(len, docs)) > 300_000
    assert docs == builtin_documents()
    assert "the" in docs[0].lower().split()


def test_text_and_jsonl_files(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first document\n\nsecond document\n")
    assert load_documents(txt) == ["first document", "second document"]
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": t}) for t in ["x y", "z"]) + "\n")
    assert load_documents(jsonl, text_field="body") == ["x y", "z"]


@pytest.mark.parametrize("content,match", [("", "no text"), ('{"text": 1}\n', "no string field"), ("{oops\n", "not valid JSON")])
def test_bad_files_get_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as err:
        load_documents(path)
    assert "\n" not in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_documents(tmp_path / "nope.txt")


def test_packing_makes_full_sequences_without_padding():
    data = build_eval_data(ByteTokenizer(), ["abcdef", "ghij"], seq_len=4, max_tokens=100)
    assert data.input_ids.shape == (3, 4)  # 6 + EOS + 4 + EOS = 12 tokens -> 3 sequences of 4
    assert data.input_ids[0].tolist() == list(b"abcd")
    data = build_eval_data(ByteTokenizer(), ["abcdefghijkl"], seq_len=4, max_tokens=9)
    assert data.n_sequences == 2 and data.n_tokens == 8


def test_too_little_data_is_an_error():
    with pytest.raises(DataError, match="fewer than one sequence"):
        build_eval_data(ByteTokenizer(), ["ab"], seq_len=16, max_tokens=64)
    with pytest.raises(DataError, match="smaller than one sequence"):
        build_eval_data(ByteTokenizer(), ["ab" * 50], seq_len=16, max_tokens=8)


def test_validation_split_shares_no_document():
    docs = builtin_documents()
    train, valid = document_split(docs, 0.1)
    assert not set(train) & set(valid)
    assert 0.03 < len(valid) / len(docs) < 0.25
    assert document_split(list(reversed(docs)), 0.1)[1] == list(reversed(valid))


def test_batches_shard_over_ranks():
    from sparsinglaw.data import EvalData

    data = EvalData(input_ids=torch.arange(40).view(10, 4))
    seen = [start for rank in range(2) for start, _ in data.batches(3, rank=rank, world_size=2)]
    assert sorted(seen) == [0, 3, 6, 9]


def test_a_local_dataset_directory_loads_through_datasets(tmp_path):
    """A folder of data files is read by the `datasets` library (no hub access), its text column taken."""
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps({"content": f"document {i}"}) for i in range(5)) + "\n")
    assert load_documents(folder, text_field="content") == [f"document {i}" for i in range(5)]
    with pytest.raises(DataError, match="no column"):
        load_documents(folder, text_field="text")


def test_shipped_english_corpus_is_several_times_the_builtin():
    from sparsinglaw.data import builtin_documents, corpus_summary, load_documents

    docs = load_documents("shakespeare")
    summary = corpus_summary(docs)
    assert summary["characters"] > 8 * corpus_summary(builtin_documents())["characters"]
    assert summary["documents"] > 500 and all(d.strip() for d in docs)
    assert any("To be, or not to be" in d for d in docs)  # real text, not generated


def test_epochs_count_passes_over_the_packed_text():
    from sparsinglaw.train.data import epochs

    assert epochs(1000, 10, 100) == 1.0
    assert epochs(4000, 10, 100) == 4.0
    assert epochs(500, 10, 100) == 0.5


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_non_utf8_files_name_the_line_of_the_first_bad_byte(tmp_path, suffix):
    path = tmp_path / f"latin1{suffix}"
    lines = ['{"text": "plain"}', '{"text": "second"}', '{"text": "café crème"}'] if suffix == ".jsonl" else \
        ["plain", "", "second", "café crème"]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match=rf"latin1{suffix}:{len(lines)} is not UTF-8 .*iconv"):
        load_documents(path)


def test_jsonl_keeps_line_separators_inside_strings(tmp_path):
    """Only newlines end a record: a U+2028 inside a string (legal unescaped JSON) stays in the document."""
    path = tmp_path / "sep.jsonl"
    path.write_text(json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\r\n", encoding="utf-8")
    assert load_documents(path) == ["a\u2028b"]


def test_a_text_field_for_a_text_file_is_said_to_be_ignored(tmp_path, caplog):
    path = tmp_path / "a.txt"
    path.write_text("first document\n\nsecond document\n")
    with caplog.at_level("WARNING", logger="sparsinglaw"):
        assert load_documents(path, text_field="body") == ["first document", "second document"]
    assert any("--text-field body is ignored" in r.getMessage() and "a.txt" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sparsinglaw"):
        load_documents(path)  # the default field names nothing the user chose: no warning
    assert not caplog.records
