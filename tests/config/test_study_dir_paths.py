"""A study directory is read back with ``out_dir`` set to where it lies, whatever characters its path holds."""

from __future__ import annotations

import pytest

from sparsinglaw.store.layout import STUDY_FILE
from sparsinglaw.study.collect import load_study_dir
from sparsinglaw.study.config import load_study

AWKWARD_NAMES = [
    "back\\slash",  # Python's repr doubles it and TOML's '...' keeps both
    "C:\\new\\table",  # \n and \t: escapes in a basic string, literal in a path
    "quote's \"and\" both",
    "tab\there",
    "ctrl\x01\x1bchars",
    "emoji 😀 é",
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_a_study_directory_keeps_its_exact_path(tmp_path, name):
    study_dir = tmp_path / name
    study_dir.mkdir()
    load_study("demo").to_file(study_dir / STUDY_FILE)
    cfg = load_study_dir(study_dir)
    assert cfg.out_dir == str(study_dir)
    assert cfg.cells()[0].run_dir.parent.parent == study_dir
