"""Text corpora: the built-in corpus that exists on every machine, local text/JSONL files, and datasets.

``"builtin"``: English prose shipped with CPython (``pydoc_data.topics`` and the standard library's
docstrings, read with ``ast``), so it depends only on the Python version. ``"shakespeare"`` (~5M characters,
one document per scene; Project Gutenberg texts, CC BY 2.5, see ``texts/NOTICE.txt``) ships xz-compressed.
``"english"`` (~90M characters) is installed by ``./dev corpus``: see ``english.py``."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import lzma
import pydoc_data.topics
import sysconfig
from pathlib import Path

from sparsinglaw.data.english import ENGLISH, english_documents
from sparsinglaw.data.sources import jsonl_text
from sparsinglaw.errors import DataError

log = logging.getLogger("sparsinglaw")

BUILTIN = "builtin"
SHAKESPEARE = "shakespeare"
SHIPPED = {SHAKESPEARE: "shakespeare.jsonl.xz"}  # source name -> file in sparsinglaw/data/texts/


def builtin_documents() -> list[str]:
    """The built-in corpus as a list of documents (deterministic order; a fresh list each call)."""
    return list(_builtin_documents())


@functools.lru_cache(maxsize=1)
def _builtin_documents() -> tuple[str, ...]:
    # Parsing every stdlib module takes seconds: do it once per process.
    docs = [pydoc_data.topics.topics[key].strip() for key in sorted(pydoc_data.topics.topics)]
    return tuple([d for d in docs if d] + _stdlib_docstrings())


def _stdlib_docstrings(min_chars: int = 400) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        doc = ast.get_docstring(tree)
        if doc and len(doc) >= min_chars:
            docs.append(doc.strip())
    return docs


def shipped_documents(name: str = SHAKESPEARE) -> list[str]:
    """A corpus shipped with the package (``SHIPPED``), as documents in a fixed order."""
    return list(_shipped_documents(name))


@functools.lru_cache(maxsize=2)
def _shipped_documents(name: str) -> tuple[str, ...]:
    if name not in SHIPPED:
        raise DataError(f"no shipped corpus {name!r} (shipped: {', '.join(SHIPPED)})")
    path = Path(__file__).with_name("texts") / SHIPPED[name]
    try:
        lines = lzma.decompress(path.read_bytes()).decode("utf-8").splitlines()
    except (OSError, lzma.LZMAError) as err:
        raise DataError(f"the shipped corpus {path} cannot be read ({err}); reinstall sparsinglaw") from None
    return tuple(json.loads(line)["text"] for line in lines if line.strip())


def corpus_summary(docs: list[str]) -> dict:
    """Documents and characters of a corpus (what a study records about its training text)."""
    return {"documents": len(docs), "characters": sum(len(d) for d in docs)}


def load_documents(source: str | Path | None = None, *, text_field: str = "text", split: str = "train") -> list[str]:
    """Documents from ``source``: None or ``"builtin"``, ``"shakespeare"``, ``"english"``, a text file
    (blank-line separated), a ``.jsonl`` file (``text_field``), or a directory or ``datasets`` name (the
    ``text_field`` column of ``split``)."""
    if source is None or str(source) == BUILTIN:
        _note_ignored_field(text_field, "the built-in corpus")
        return builtin_documents()
    if str(source) in SHIPPED:
        _note_ignored_field(text_field, f"the shipped corpus {source!r}")
        return shipped_documents(str(source))
    if str(source) == ENGLISH:
        return english_documents()
    path = Path(source)
    if path.is_file():
        is_jsonl = path.suffix in (".jsonl", ".json")
        if not is_jsonl:
            _note_ignored_field(text_field, f"{path}, a plain text file (documents split at blank lines)")
        docs = _read_jsonl(path, text_field) if is_jsonl else _read_text(path)
    elif path.is_dir() or not path.suffix:
        docs = _read_dataset(str(source), text_field, split)
    else:
        raise DataError(f"data file {source} does not exist; pass a .txt or .jsonl file, a dataset, or omit --data")
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"{source} holds no text; give a file with at least one non-empty document")
    return docs


def _note_ignored_field(text_field: str, source: str) -> None:
    """A text field other than the default names a field that ``source`` does not have: say it is ignored
    instead of silently reading the whole text."""
    if text_field != "text":
        log.warning("--text-field %s is ignored: %s has no fields (only JSONL files and datasets do)",
                    text_field, source)


def _read_utf8(path: Path) -> str:
    """The file's text; a non-UTF-8 file is a ``DataError`` naming the line of the first bad byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line} is not UTF-8 text ({err.reason} at byte {err.start}); convert the file "
                        "to UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def _read_text(path: Path) -> list[str]:
    text = _read_utf8(path)
    return [block.strip() for block in text.split("\n\n") if block.strip()] if "\n\n" in text else [text]


def _read_jsonl(path: Path, text_field: str) -> list[str]:
    lines = enumerate(_read_utf8(path).split("\n"), 1)
    return [text for line_no, line in lines if (text := jsonl_text(path, line_no, line, text_field)) is not None]


def _read_dataset(name: str, text_field: str, split: str) -> list[str]:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise DataError("the 'datasets' package is needed to load a dataset; pip install datasets") from None
    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as err:  # datasets raises many types; all mean "could not load"
        raise DataError(f"could not load dataset {name!r} split {split!r}: {str(err).splitlines()[0]}") from None
    if text_field not in data.column_names:
        raise DataError(f"dataset {name!r} has no column {text_field!r} (columns: {data.column_names}); set --text-field")
    return list(data[text_field])


def document_split(docs: list[str], validation_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split documents (never inside one) into train and validation by a hash of each document: a document
    stays on its side when the corpus grows, whatever the order."""
    if not 0.0 < validation_fraction < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {validation_fraction}")
    train, valid = [], []
    for doc in docs:
        (valid if is_validation_document(doc, validation_fraction, seed) else train).append(doc)
    if not valid or not train:
        raise DataError(f"{len(docs)} documents are too few to split off a {validation_fraction:.0%} validation set")
    return train, valid



def is_validation_document(doc: str, validation_fraction: float, seed: int = 0) -> bool:
    """The rule of ``document_split`` for one document: the first 8 bytes of sha256("SEED:DOC") as a fraction
    of 2^64 fall below ``validation_fraction`` (so streams and token shards hold out the same documents)."""
    digest = hashlib.sha256(f"{seed}:{doc}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction
