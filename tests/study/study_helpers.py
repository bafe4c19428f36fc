"""Helpers for the study tests (a module, not conftest, so tests import them by name)."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

from helpers import subprocess_env  # noqa: F401  (re-exported for the tests here)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def write_corpus(path: Path) -> Path:
    """40 built-in documents (cut to 3000 characters) as JSONL: reading the whole corpus costs seconds."""
    from sparsinglaw.data import builtin_documents

    docs = [d[:3000] for d in builtin_documents()[:40]]
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    return path


def mini_config(corpus: Path, out_dir: Path, *overrides: str):
    from sparsinglaw.study import load_study

    return load_study("mini", [f"out_dir={json.dumps(str(out_dir))}", f"base.data.source={json.dumps(str(corpus))}",
                               "threads=1", "base.progress=false", *overrides])




class Tables(HTMLParser):
    """Every <table id=...> of a page as a list of rows of cell texts; every <img> src."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
