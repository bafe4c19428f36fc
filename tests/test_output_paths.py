"""Output paths: refused up front when they cannot be written; a final write that fails anyway is saved beside
the path or in the temp directory, and the CLI says where and exits 1."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import main
from sparsinglaw.cli.output_paths import (
    OutputPathError,
    check_writable,
    save_dir_with_fallback,
    save_with_fallback,
)


def test_check_writable_accepts_new_files_and_creatable_directories(tmp_path):
    assert check_writable(tmp_path / "r.json") == tmp_path / "r.json"
    assert check_writable(tmp_path / "new" / "deeper" / "r.json")  # created by the writer later
    assert check_writable(tmp_path / "run", "dir")
    assert not (tmp_path / "new").exists() and not (tmp_path / "run").exists()  # the check creates nothing
    assert not list(tmp_path.iterdir())  # and leaves no probe file


@pytest.mark.parametrize("make,kind,phrase", [
    (lambda p: p.mkdir(), "file", "is a directory"),
    (lambda p: p.write_text("x"), "dir", "is a file"),
    (lambda p: None, "file/", "is a directory"),
])
def test_check_writable_refuses_the_wrong_kind(tmp_path, make, kind, phrase):
    target = tmp_path / "out"
    make(target)
    text = str(target) + ("/" if kind.endswith("/") else "")
    with pytest.raises(OutputPathError, match=phrase):
        check_writable(text, kind.rstrip("/"), option="--output")


def test_check_writable_refuses_unwritable_places(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a directory"):
        check_writable(tmp_path / "afile" / "sub" / "r.json")
    with pytest.raises(OutputPathError, match="cannot be written"):
        check_writable("/proc/sparsinglaw-nowhere/r.json")
    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(OutputPathError, match="cannot be written"):
            check_writable(locked / "r.json")


def test_a_failed_write_is_saved_beside_the_path(tmp_path, caplog):
    calls = []

    def write(path):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        path.write_text("result")

    with caplog.at_level(logging.WARNING, logger="sparsinglaw"):
        written, moved = save_with_fallback(write, tmp_path / "r.json", "result")
    assert moved and written.parent == tmp_path and written.suffix == ".json" and written.read_text() == "result"
    assert str(written) in caplog.text and "No space left on device" in caplog.text


def test_a_failed_write_goes_to_the_temp_directory_when_its_place_is_gone(tmp_path):
    gone = tmp_path / "gone" / "r.json"  # the directory does not exist: nothing can be saved beside it
    written, moved = save_with_fallback(lambda p: p.write_text("r"), gone, "result")
    try:
        assert moved and written.parent == Path(tempfile.gettempdir())
        assert written.read_text() == "r"
    finally:
        written.unlink()
    with pytest.raises(OutputPathError, match="nor to"):
        save_with_fallback(lambda p: (_ for _ in ()).throw(OSError(5, "I/O error")), tmp_path / "x.json")


def test_a_failed_directory_write_goes_to_a_new_temp_directory(tmp_path):
    def write(out):
        if out == tmp_path / "report":
            raise PermissionError(13, "Permission denied")
        (out / "index.html").write_text("report")

    written, moved = save_dir_with_fallback(write, tmp_path / "report", "report")
    try:
        assert moved and (written / "index.html").read_text() == "report"
    finally:
        (written / "index.html").unlink()
        written.rmdir()


def test_measure_saves_its_result_elsewhere_when_the_final_write_fails(tmp_path, monkeypatch, capsys):
    """The place was fine at the start but the write fails at the end: nothing computed is lost."""
    from sparsinglaw.results import MeasureResult

    model_dir = saved_tiny_model(tmp_path / "m", hidden_act="relu")
    target = tmp_path / "out" / "r.json"
    real_save = MeasureResult.save

    def flaky_save(self, path):
        if str(path) == str(target):
            raise OSError(28, "No space left on device")
        return real_save(self, path)

    monkeypatch.setattr(MeasureResult, "save", flaky_save)
    code = main(["measure", "--model", str(model_dir), "--metric", "zero", "--seq-len", "32", "--max-tokens", "128",
                 "--output", str(target)])
    assert code == 1
    printed = capsys.readouterr().out
    written = [line.split("wrote ", 1)[1] for line in printed.splitlines() if line.startswith("wrote ")]
    assert len(written) == 1 and written[0] != str(target)
    assert json.loads(open(written[0]).read())["metric"] == "zero"
    os.unlink(written[0])
