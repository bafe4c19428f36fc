"""The prepared study directory, written once per session (fitting its two hand-made curves takes seconds)."""

from __future__ import annotations

import pytest
from report_helpers import prepare_study_dir


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory):
    return prepare_study_dir(tmp_path_factory.mktemp("prepared") / "study")
