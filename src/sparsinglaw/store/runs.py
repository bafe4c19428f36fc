"""What a training run keeps on disk, read by the trainer, the tracker and the study alike: the run
directory's names, complete-checkpoint discovery and the validation sequences the run evaluates on.

``RUN_DIR``'s files: docs/architecture.md ("A training run"). Each ``checkpoint-<step>/`` is a standard
transformers directory plus the optimizer, scheduler and trainer state for resuming; its
``sparsinglaw_checkpoint.json`` (tokens seen) is written last. A checkpoint without the marker was interrupted
while being written: resuming ignores it and removes it (it is rewritten at the same step), and trackers must
skip it. Below both ``train/`` (which writes a run) and ``track/`` (which measures one), so that neither
imports the other's package to read it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sparsinglaw.data.shards import TokenShards
from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json

log = logging.getLogger("sparsinglaw")

MARKER = "sparsinglaw_checkpoint.json"
RUN_CONFIG = "run.toml"
RUN_INFO = "run.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Every ``checkpoint-<step>`` directory, complete or not, by step."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def read_marker(checkpoint: str | Path) -> dict[str, Any] | None:
    """The checkpoint's ``sparsinglaw_checkpoint.json``, or None when missing or unreadable (incomplete)."""
    try:
        return json.loads((Path(checkpoint) / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def complete_checkpoints(run_dir: str | Path) -> list[dict[str, Any]]:
    """Marker contents of each complete checkpoint (with ``path``), by tokens seen."""
    out = []
    for _step, path in checkpoint_dirs(run_dir):
        info = read_marker(path)
        if info is not None:
            out.append({**info, "path": str(path)})
    return out


def last_complete_checkpoint(run_dir: str | Path) -> Path | None:
    done = complete_checkpoints(run_dir)
    return Path(done[-1]["path"]) if done else None


def remove_incomplete(run_dir: str | Path) -> list[Path]:
    """Delete checkpoints newer than the last complete one that lack the marker (a kill mid-save)."""
    last = last_complete_checkpoint(run_dir)
    last_step = int(_CHECKPOINT.match(last.name).group(1)) if last else -1
    removed = []
    for step, path in checkpoint_dirs(run_dir):
        if step > last_step and read_marker(path) is None:
            log.warning("removing incomplete checkpoint %s (interrupted while being written)", path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def write_marker(checkpoint: Path, info: dict[str, Any]) -> None:
    atomic_write_json(checkpoint / MARKER, info)


def read_data_meta(run_dir: str | Path) -> dict:
    """``RUN_DIR/data/meta.json`` (sequences, documents, epochs, the shards read), or {} before training."""
    try:
        return json.loads((Path(run_dir) / "data" / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def run_validation_sequences(run_dir: str | Path) -> np.ndarray | None:
    """The validation sequences a run evaluates on, read from the token shards it trains on
    (``RUN_DIR/data/meta.json``), or from ``RUN_DIR/data/valid.npy`` for a run from before shards that was
    not resumed since; None when neither is there."""
    path = Path(run_dir) / "data" / "valid.npy"
    if path.is_file():
        return np.load(path)
    meta = read_data_meta(run_dir)
    if not meta.get("shards"):
        return None

    directory = Path(run_dir) / "data" / meta["shards"]  # the run's own shards: relative; others absolute
    shards = TokenShards(directory)
    if shards.identity != meta.get("shards_identity"):
        raise DataError(f"the shards in {directory} changed since the run in {run_dir} was trained")
    return shards.validation_sequences(meta["seq_len"], meta["valid_sequences"] * meta["seq_len"])
