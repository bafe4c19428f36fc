"""Docstring examples run, and the top-level package imports its public names lazily.

Every module under src/sparsinglaw whose docstrings hold ``>>>`` examples is run through doctest; the
literal ``::`` example of ``sparsinglaw.laws`` (a full fit with 200 bootstrap refits) runs under the slow
marker. The top-level checks run in fresh interpreters, where import order and cost are visible.
"""

from __future__ import annotations

import doctest
import importlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "sparsinglaw"


def _doctest_modules() -> list[str]:
    """Dotted names of the modules whose source holds a ``>>>`` prompt (found without importing them)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            rel = path.relative_to(SRC).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            names.append(".".join(parts))
    return names


DOCTEST_MODULES = _doctest_modules()


def test_the_public_entry_points_have_examples():
    assert {"sparsinglaw", "sparsinglaw.registry", "sparsinglaw.laws", "sparsinglaw.laws.paper"} <= set(
        DOCTEST_MODULES)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see output)"


def _literal_blocks(doc: str) -> list[str]:
    """The indented blocks that follow a line ending in ``::`` (reStructuredText literal blocks)."""
    blocks = re.findall(r"::\n\n((?:(?:[ \t]+\S.*)?\n)+)", doc)
    return [textwrap.dedent(b) for b in blocks]


@pytest.mark.slow
def test_laws_api_literal_example_runs(tmp_path, monkeypatch):
    import sparsinglaw.laws as laws

    (block,) = _literal_blocks(laws.__doc__)
    shutil.copy(laws.paper.paper_curve_path("0.4b_relu"), tmp_path / "0.4b_relu.json")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "sparsinglaw.laws docstring", "exec"), namespace)
    assert namespace["result"].law == "relu" and not namespace["result"].limit.identified


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


_CHECK_MEASURE = ("import sys, sparsinglaw\nfrom sparsinglaw import measure, MeasureConfig\n"
                  "import sparsinglaw.measure as mod\n"
                  "print(measure is mod is sys.modules['sparsinglaw.measure'], callable(measure), "
                  "mod.MeasureConfig is MeasureConfig, measure.measure.__module__)\n")


def test_import_is_cheap_and_every_public_name_resolves():
    """``import sparsinglaw`` loads no torch; then every name of ``__all__`` imports on first use."""
    code = ("import sys, sparsinglaw; print('torch' not in sys.modules)\n" + _CHECK_MEASURE +
            "print([n for n in sparsinglaw.__all__ if getattr(sparsinglaw, n, None) is None])")
    assert _python(code).splitlines() == ["True", "True True True sparsinglaw.measure", "[]"]


def test_measure_stays_callable_when_the_submodule_is_imported_first():
    """The import system binds ``sparsinglaw.measure`` to the module itself: it must still be callable."""
    code = "from sparsinglaw.measure import MeasureConfig\n" + _CHECK_MEASURE
    assert _python(code) == "True True True sparsinglaw.measure"


def test_unknown_top_level_name_is_an_attribute_error():
    import sparsinglaw

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sparsinglaw.nope  # noqa: B018
    assert "load_model" in dir(sparsinglaw)


def _paper_sections() -> set[str]:
    text = (SRC.parent / "docs" / "paper.md").read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.MULTILINE))


def test_docs_paper_references_resolve():
    """Every "docs/paper.md section N" (or N.M, "sections 1-2", "sections 2 and 4") names a real heading."""
    sections = _paper_sections()
    assert {"1", "2", "3", "4", "2.4", "2.5", "3.5", "4.1"} <= sections
    cited = re.compile(r"docs/paper\.md,? sections? (\d+(?:\.\d+)?)(?:\s*(?:-|and|,)\s*(\d+(?:\.\d+)?))?")
    roots = [SRC, SRC.parent / "tests", SRC.parent / "benchmarks", SRC.parent / "README.md", SRC.parent / "docs"]
    files = [p for r in roots if r.exists() for p in ([r] if r.is_file() else r.rglob("*"))
             if p.suffix in (".py", ".md", ".toml")]
    bad = [f"{p.relative_to(SRC.parent)}: section {n}" for p in files
           for m in cited.finditer(p.read_text(encoding="utf-8")) for n in m.groups() if n and n not in sections]
    assert not bad, bad
