"""Atomic file writes: a crash or a kill never leaves a half-written result behind."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """Where sparsinglaw caches what it derives (built kernels, converted GGUF models):
    ``$SPARSINGLAW_CACHE``, else ``$XDG_CACHE_HOME/sparsinglaw``, else ``~/.cache/sparsinglaw``."""
    root = os.environ.get("SPARSINGLAW_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "sparsinglaw") if xdg else str(Path.home() / ".cache" / "sparsinglaw")
    return Path(root)


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back: there is no read-only call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_shareable_dir(path: str | Path) -> Path:
    """Give a ``tempfile.mkdtemp`` directory (created 0o700) the mode ``mkdir`` would give it, 0o777 less the
    umask, before it is renamed into place: a run's tokenizer, a converted model."""
    os.chmod(path, 0o777 & ~current_umask())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it into place. The file gets
    the mode a plain ``open`` would give it (0o666 less the umask): ``mkstemp`` creates it 0o600, which would
    leave shared results, run files and checkpoint markers readable by their owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def _plain(value: Any, top: bool = False) -> Any:
    """``dataclasses.asdict``, except that a dataclass with its own ``to_dict`` (a typed record) writes itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if not top and hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class JsonFile:
    """``to_dict``/``save``/``load`` for a dataclass result with a ``from_dict`` classmethod (atomic writes);
    ``known_fields`` keeps the keys ``from_dict`` can take (files written by newer versions may have more)."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self, top=True)

    @classmethod
    def known_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in data.items() if k in known}

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path):
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
