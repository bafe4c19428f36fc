"""The atomic writer: files get the mode a plain ``open`` gives them (0o666 less the umask), not 0o600."""

from __future__ import annotations

import os
import stat

import pytest

from sparsinglaw.fileio import atomic_write_json, atomic_write_text, current_umask
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.store.runs import read_marker, write_marker


@pytest.fixture
def umask():
    """Set a umask for the test, restoring the process's afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    assert _mode(atomic_write_text(tmp_path / "r.txt", "x")) == expected
    assert _mode(atomic_write_json(tmp_path / "r.json", {"a": 1})) == expected
    write_marker(tmp_path, {"tokens": 5})  # a checkpoint's completion marker
    assert read_marker(tmp_path) == {"tokens": 5} and _mode(tmp_path / "sparsinglaw_checkpoint.json") == expected
    assert current_umask() == mask  # reading the umask left it as it was


def test_store_exports_readable_by_others(tmp_path, umask):
    umask(0o022)
    store = ResultsStore(tmp_path / "run")
    store.record("run", "checkpoint-1", 10, "pplp", value=0.5, activation_ratio=0.5)
    assert _mode(store.export_csv(tmp_path / "points.csv")) == 0o644
    assert _mode(store.export_json(tmp_path / "points.json")) == 0o644


def test_a_runs_tokenizer_directory_honours_the_umask(tmp_path, umask):
    """The tokenizer is saved into a ``mkdtemp`` directory (0o700) and renamed into the run directory."""
    from sparsinglaw.data import builtin_documents
    from sparsinglaw.data.tokenizer import prepare_tokenizer
    from sparsinglaw.train.config import TokenizerConfig

    umask(0o022)
    prepare_tokenizer(TokenizerConfig(vocab_size=300), tmp_path, [d[:2000] for d in builtin_documents()[:20]])
    saved = tmp_path / "tokenizer"
    assert _mode(saved) == 0o755
    assert all(_mode(f) == 0o644 for f in saved.iterdir())
