"""Output paths: checked before any work (``check_writable``), and never a lost result when the final write
fails anyway (``save_with_fallback`` writes beside the path or into the temp directory and says where)."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sparsinglaw.errors import ConfigError

log = logging.getLogger("sparsinglaw")


class OutputPathError(ConfigError):
    """An output path cannot be written: its place is missing and cannot be made, read-only, or of the wrong
    kind (a directory where a file is meant, or a file where a directory is)."""


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _probe_directory(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else why not. A real create, not ``os.access``:
    root passes every permission check yet cannot write to a read-only file system."""
    try:
        fd, name = tempfile.mkstemp(prefix=".sparsinglaw-probe-", dir=folder)
    except OSError as err:
        return err.strerror or str(err)
    os.close(fd)
    os.unlink(name)
    return None


# The atomic writer's temporary name is ``.NAME.<8 random>.tmp``: a file name this much shorter than the file
# system's limit still has room for it.
_TEMP_NAME_EXTRA = len("..") + 8 + len(".tmp")


def _name_limit(folder: Path) -> int:
    """The longest file name (bytes) the file system holding ``folder`` takes (NAME_MAX, 255 on most)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_name_lengths(path: Path, kind: str, option: str) -> None:
    """An ``OutputPathError`` for a path component longer than the file system takes, before any ``stat`` on
    the path raises ``ENAMETOOLONG`` from inside the check itself."""
    limit = _name_limit(_nearest_existing_short(path))
    for index, part in enumerate(path.parts):
        own_file = kind == "file" and index == len(path.parts) - 1
        room = limit - (_TEMP_NAME_EXTRA if own_file else 0)
        if len(os.fsencode(part)) > room:
            raise OutputPathError(f"{option}: the name {part[:24]}... in it is {len(os.fsencode(part))} bytes, "
                                  f"over the file system's {room}-byte limit; give a shorter name")


def _nearest_existing_short(path: Path) -> Path:
    """The nearest existing directory above ``path`` reached through components short enough to ``stat``."""
    absolute = path.absolute()
    probe = Path(absolute.anchor)
    for part in absolute.parts[1:]:
        if len(os.fsencode(part)) > 255 or not (probe / part).is_dir():
            break
        probe = probe / part
    return probe


def check_writable(path: str | Path, kind: str = "file", *, option: str = "output") -> Path:
    """``path`` as a Path if a ``kind`` ("file" or "dir") can be written there, else ``OutputPathError`` naming
    ``option``. Missing directories are fine when they can be created (the writers create them); nothing is
    created here."""
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    text = str(path)
    path = Path(path).expanduser()
    _check_name_lengths(path, kind, option)
    if kind == "file" and (text.endswith(os.sep) or path.is_dir()):
        raise OutputPathError(f"{option} {text} is a directory; give a file name")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {text} is a file; give a directory")
    start = path if kind == "dir" else path.parent
    existing = _nearest_existing(start.absolute())
    if not existing.is_dir():
        raise OutputPathError(f"{option} {text}: {existing} is a file, not a directory")
    reason = _probe_directory(existing)
    if reason:
        where = "" if existing == start.absolute() else f" ({existing} is the nearest existing directory)"
        raise OutputPathError(f"{option} {text} cannot be written: {reason}{where}")
    return path


def fallback_path(path: Path) -> Path:
    """Where to save a result whose write to ``path`` failed: beside it under a dated name if that place is
    writable, else in the temp directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{path.stem}.unsaved-{stamp}-{os.getpid()}{path.suffix}"
    parent = path.parent
    if parent.is_dir() and _probe_directory(parent) is None:
        return parent / name
    return Path(tempfile.gettempdir()) / name


def save_with_fallback(write: Callable[[Path], object], path: str | Path, what: str = "result") -> tuple[Path, bool]:
    """``write(path)``; if that fails with an OSError, ``write`` to ``fallback_path(path)`` and warn where the
    ``what`` went. Returns (path written, whether it is the fallback). Raises only if both writes fail."""
    return _write_or_fallback(write, Path(path), fallback_path, what)


def save_dir_with_fallback(write: Callable[[Path], object], path: str | Path, what: str) -> tuple[Path, bool]:
    """``save_with_fallback`` for a directory output: the fallback is a new directory in the temp directory."""
    return _write_or_fallback(write, Path(path),
                              lambda p: Path(tempfile.mkdtemp(prefix=f"{p.name or 'sparsinglaw'}-")), what)


def _write_or_fallback(write: Callable[[Path], object], path: Path, fallback: Callable[[Path], Path],
                       what: str) -> tuple[Path, bool]:
    try:
        write(path)
        return path, False
    except OSError as err:
        first = err
    other = fallback(path)
    try:
        write(other)
    except OSError as err:
        raise OutputPathError(f"could not write the {what} to {path} ({first.strerror or first}) "
                              f"nor to {other} ({err.strerror or err})") from None
    log.warning("could not write the %s to %s (%s); saved it to %s instead", what, path, first.strerror or first,
                other)
    return other, True
