"""Documents streamed one at a time from a local file or folder, or from a ``datasets`` name, so memory
does not grow with the corpus: ``.txt`` (blank-line separated), ``.jsonl`` / ``.json`` (``text_field``),
``.parquet``, a folder of those in sorted order, else ``datasets.load_dataset(SOURCE, streaming=True)``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from sparsinglaw.errors import DataError

FILE_SUFFIXES = (".txt", ".jsonl", ".json", ".parquet")
# read from a folder: not .json, which is as often a config file (a tokenizer's, a manifest) as JSON lines
FOLDER_SUFFIXES = (".txt", ".jsonl", ".parquet")


def local_files(source: str | Path) -> list[Path]:
    """The files a local source is read from (one file, or a folder's text files in sorted order); [] for a
    source that is not a local path (a ``datasets`` name)."""
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in FOLDER_SUFFIXES)
        if not files:
            raise DataError(f"{path} holds no {', '.join(FOLDER_SUFFIXES)} files; give a folder of text files")
        return files
    return []


def source_bytes(source: str | Path, via_datasets: bool = False) -> int | None:
    """Bytes of a local source (what the progress bar counts), None for a ``datasets`` stream."""
    files = [] if via_datasets else local_files(source)
    return sum(f.stat().st_size for f in files) if files else None


def iter_documents(source: str | Path, *, text_field: str = "text", split: str = "train",
                   via_datasets: bool = False, on_bytes=None) -> Iterator[str]:
    """The non-empty documents of ``source`` in a fixed order; ``on_bytes(n)`` is called as local files are
    read (for a progress bar)."""
    files = [] if via_datasets else local_files(source)
    if not files:
        if not via_datasets and Path(source).suffix in FILE_SUFFIXES:
            raise DataError(f"data file {source} does not exist; pass a .txt/.jsonl/.parquet file, a folder, "
                            "or a datasets name")
        yield from _dataset_documents(str(source), text_field, split)
        return
    for path in files:
        reader = {".txt": _text_documents, ".parquet": _parquet_documents}.get(path.suffix, _jsonl_documents)
        yield from reader(path, text_field, on_bytes)


def _text_documents(path: Path, text_field: str, on_bytes) -> Iterator[str]:
    lines: list[str] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if on_bytes:
                    on_bytes(len(line.encode("utf-8")))
                if line.strip("\r\n"):
                    lines.append(line)
                    continue
                doc = "".join(lines).strip()
                lines = []
                if doc:
                    yield doc
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason}); convert it or pass a .jsonl file") from None
    doc = "".join(lines).strip()
    if doc:
        yield doc


def jsonl_text(path: Path, line_no: int, line: str, text_field: str) -> str | None:
    """The text of one JSONL line (None for a blank line); a one-line DataError naming the line otherwise."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise DataError(f"{path}:{line_no} is not valid JSON; each line must be one JSON object") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        raise DataError(f"{path}:{line_no} has no string field {text_field!r}; set --text-field")
    return record[text_field]


def _jsonl_documents(path: Path, text_field: str, on_bytes) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if on_bytes:
                on_bytes(len(line.encode("utf-8")))
            text = jsonl_text(path, line_no, line, text_field)
            if text and text.strip():
                yield text


def _parquet_documents(path: Path, text_field: str, on_bytes) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(str(path))
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise DataError(f"{path} cannot be read as parquet ({str(err).splitlines()[0]})") from None
    if text_field not in table.schema_arrow.names:
        raise DataError(f"{path} has no column {text_field!r} (columns: {table.schema_arrow.names}); set --text-field")
    per_group = path.stat().st_size / max(1, table.metadata.num_row_groups)
    for group in range(table.metadata.num_row_groups):
        for batch in table.iter_batches(batch_size=1024, row_groups=[group], columns=[text_field]):
            for doc in batch.column(0).to_pylist():
                if isinstance(doc, str) and doc.strip():
                    yield doc
        if on_bytes:
            on_bytes(int(per_group))


def _dataset_documents(name: str, text_field: str, split: str) -> Iterator[str]:
    try:
        import datasets

        stream = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as err:  # datasets raises many types; all mean "could not open the stream"
        raise DataError(f"source {name!r}: cannot stream split {split!r} through datasets: "
                        f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    for record in stream:
        doc = record.get(text_field)
        if not isinstance(doc, str):
            raise DataError(f"source {name!r} has no string column {text_field!r}; set --text-field")
        if doc.strip():
            yield doc
