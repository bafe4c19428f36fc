"""Stamp every result with what produced it: package versions, git hash, date, host and config.

Modelled on lm-evaluation-harness, which records enough with each result to reproduce it.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("sparsinglaw", "torch", "transformers", "accelerate", "numpy", "scipy", "gguf")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result ("missing" when absent)."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def git_hash(path: Path | None = None) -> str | None:
    """Commit of the sparsinglaw checkout (None when not installed from a git checkout)."""
    here = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def stamp(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A provenance record to attach to any result."""
    return {
        "versions": package_versions(),
        "git_hash": git_hash(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "config": config or {},
    }
