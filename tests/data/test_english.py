"""The installed English corpus: prose kept and code dropped, dedupe, fixed order, the cache, bad input.

The reader runs on a small corpus written by each test in the layout ``./dev corpus`` unpacks (HTML pages,
POD, one-line speeches); the real corpus is checked too where it is installed (``.cache/english`` or
``$SPARSINGLAW_ENGLISH_DIR``), and skipped where it is not, as in CI (``./dev test`` does not fetch it).
"""

from __future__ import annotations

import json

import pytest

from sparsinglaw.data import english, english_fetch, load_documents, prose
from sparsinglaw.errors import DataError

PROSE = ("The kernel keeps a list of the pages that each process has mapped, and it frees them when the "
         "process exits. This is why a leak in one program cannot use up the memory of the others.")
PROSE_2 = ("A table is a collection of rows that share the same columns. Each of the rows is stored in a page "
           "of the heap file, and an index can point to it by its position in that file.")
CODE = "for (i = 0; i < n; i++) { total += a[i]; }  /* sum of the array, see the loop in main() */"

PAGE = f"""<html><head><title>Memory</title><script>var x = "{PROSE_2}";</script></head><body>
<div class="sphinxsidebar"><p>{PROSE_2}</p><div><p>nested {PROSE_2}</p></div></div>
<div class="body"><h1>Memory&para;</h1><p>{PROSE}</p><pre>{CODE}</pre>
<p>{CODE}</p><p>Der Kernel verwaltet den Speicher der Prozesse und gibt ihn frei, wenn sie enden.</p>
<ul><li>{PROSE_2}</li></ul><img class="toc" src="x.png"><p>{PROSE.upper().lower()}</p></div></body></html>"""

POD = f"""=head1 NAME

perlfoo - a B<bold> claim

=head2 Use

{PROSE.replace("memory", "C<memory>").replace("list", "L<list|perlfunc/list>")}

    my $x = shift;  # a verbatim block: code

"""


def _components(tmp_path):
    """Three components in the unpacked layout: HTML pages, POD and a one-line speech."""
    comps = (english.Component("pages", "apt", "pages-doc", "1", "MIT", "html", "html", exclude=("_sources",)),
             english.Component("pods", "apt", "pods-doc", "1", "MIT", "pod", "pod", "*.pod"),
             english.Component("speeches", "npm", "speeches", "1", "public domain", "data", "text", "*.txt"))
    pages = tmp_path / "pages" / "html"
    (pages / "sub").mkdir(parents=True)
    (pages / "_sources").mkdir()
    (pages / "b.html").write_text(PAGE)
    again = f"{PROSE_2} Again, the rows of a table are read in the order of the pages that hold them, " \
            "unless an index says which of the pages to read first."
    (pages / "sub" / "a.html").write_text(f"<p>{PROSE_2}</p><p>{again}</p>")
    (pages / "_sources" / "c.html").write_text(f"<p>{PROSE} Only in a skipped folder.</p>")
    (tmp_path / "pods" / "pod").mkdir(parents=True)
    (tmp_path / "pods" / "pod" / "perlfoo.pod").write_text(POD)
    (tmp_path / "speeches" / "data").mkdir(parents=True)
    speech = " ".join(f"Sentence number {i} of the address is about the state of the union." for i in range(200))
    (tmp_path / "speeches" / "data" / "1790.txt").write_text(speech)
    return comps


def test_html_keeps_prose_and_drops_code_navigation_and_other_languages():
    kept = prose.prose_paragraphs(prose.html_paragraphs(PAGE))
    assert kept == [PROSE, PROSE_2, PROSE.lower()]  # dedupe (case-blind) is the corpus's job
    assert all("{" not in p and "Kernel" not in p for p in kept)


def test_pod_strips_formatting_codes_and_verbatim_blocks():
    kept = prose.prose_paragraphs(prose.pod_paragraphs(POD))
    assert kept == [PROSE]


def test_documents_are_deduped_cut_and_in_a_fixed_order(tmp_path, monkeypatch):
    monkeypatch.setattr(english, "MAX_DOC_CHARS", 2_000)
    comps = _components(tmp_path)
    parts = dict(english.build_by_component(tmp_path, comps, workers=1))
    docs = [d for part in parts.values() for d in part]
    paragraphs = [p for d in docs for p in d.split("\n\n")]
    assert len(paragraphs) == len({p.lower() for p in paragraphs})  # each paragraph once in the corpus
    pages = parts["pages"]
    assert PROSE in pages[0] and PROSE_2 in pages[0]  # b.html sorts before sub/a.html
    assert pages[1].startswith(PROSE_2 + " Again")  # a.html's first paragraph was seen in b.html: dropped
    assert parts["pods"] == []  # its one paragraph is b.html's first
    assert all(" {" not in d and "Only in a skipped folder" not in d for d in docs)
    speeches = parts["speeches"]
    assert len(speeches) > 4 and all(len(d) <= 2_000 for d in speeches)  # cut at sentence ends
    assert all(d.endswith("union.") for d in speeches)
    mixed = english.build_documents(tmp_path, comps, workers=2)
    assert sorted(mixed) == sorted(docs) and mixed != docs  # the same documents, sources interleaved
    assert english.mixed_order(list(reversed(list(parts.items())))) == mixed


def test_prepare_caches_the_cleaned_documents_and_rebuilds_when_stale(tmp_path):
    comps = _components(tmp_path)
    manifest = english.prepare(tmp_path, comps, workers=1)
    assert english.cleaned_is_current(tmp_path, comps)
    lines = (tmp_path / english.CLEANED).read_text().splitlines()
    assert manifest["documents"] == len(lines) and manifest["components"][0]["licence"] == "MIT"
    assert manifest["characters"] == sum(len(json.loads(line)["text"]) for line in lines)
    newer = (comps[0], comps[1], english.Component(**{**comps[2].__dict__, "version": "2"}))
    assert not english.cleaned_is_current(tmp_path, newer)


def test_load_documents_reads_the_installed_corpus(tmp_path, monkeypatch):
    comps = _components(tmp_path)
    monkeypatch.setattr(english, "COMPONENTS", comps)
    monkeypatch.setenv("SPARSINGLAW_ENGLISH_DIR", str(tmp_path))
    english._english_documents.cache_clear()
    docs = load_documents("english")  # cleans on first read when ./dev corpus did not
    assert docs == english.build_documents(tmp_path, comps, workers=1)
    assert (tmp_path / english.MANIFEST).is_file()
    english._english_documents.cache_clear()


def test_a_missing_corpus_says_to_run_dev_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSINGLAW_ENGLISH_DIR", str(tmp_path / "nowhere"))
    english._english_documents.cache_clear()
    with pytest.raises(DataError, match=r"run \./dev corpus") as err:
        load_documents("english")
    assert "\n" not in str(err.value)


def test_fetch_is_skipped_for_components_already_unpacked(tmp_path, capsys):
    comps = _components(tmp_path)
    for comp in comps:
        (tmp_path / comp.name / english_fetch.STAMP).write_text(english_fetch._pin_line(comp) + "\n")
    manifest = english_fetch.fetch_all(tmp_path, comps)  # nothing to download: only the cleaning runs
    assert manifest["documents"] > 0 and "unpacked" not in capsys.readouterr().out
    assert english_fetch.fetch_all(tmp_path, comps) == manifest  # current: read back, not rebuilt


def test_the_installed_corpus_is_big_enough_for_the_reproduce_budget():
    root = english.english_dir()
    if not english.cleaned_is_current(root):
        pytest.skip(f"the english corpus is not installed in {root} (./dev corpus)")
    manifest = json.loads((root / english.MANIFEST).read_text())
    assert manifest["characters"] >= 50_000_000
    with (root / english.CLEANED).open() as handle:
        first = json.loads(handle.readline())["text"]
    assert prose.is_prose(first.split("\n\n")[0]) and len(first) <= english.MAX_DOC_CHARS


def test_unpacking_keeps_only_the_text_files_of_the_component(tmp_path):
    pages = tmp_path / "usr" / "share" / "doc" / "pkg" / "html"
    (pages / "img").mkdir(parents=True)
    (pages / "a.html").write_text("<p>kept</p>")
    (pages / "genindex.html").write_text("<p>an index: excluded</p>")
    (pages / "img" / "logo.png").write_bytes(b"\x89PNG")
    (tmp_path / "usr" / "bin").mkdir()
    (tmp_path / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    component = english.Component("pkg", "apt", "pkg", "1", "MIT", "usr/share/doc/pkg/html", "html",
                                  exclude=("genindex",))
    english_fetch._keep_texts(tmp_path, pages, component)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == \
        ["usr/share/doc/pkg/html/a.html"]
    with pytest.raises(DataError, match="layout changed"):
        english_fetch._keep_texts(tmp_path, tmp_path / "nowhere", component)
