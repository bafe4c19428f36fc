"""Which accelerator a study's time estimate assumes, and what its token shards hold (``study --dry-run``).

Training throughput is taken as 40% of each GPU's dense bf16 peak (a lower bound on time for small models);
``cpu`` is fitted to the demo's cells on one thread; ``cuda`` is any other GPU, counted as an H100."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsinglaw.errors import ConfigError

MFU = 0.4
PEAK_BF16 = {"a100": 312e12, "h100": 989e12, "h200": 989e12}
THROUGHPUT = {"cpu": 3e10, "cuda": MFU * PEAK_BF16["h100"], **{name: MFU * peak for name, peak in PEAK_BF16.items()}}


def detect_accelerator() -> str | None:
    """The GPU torch sees, as a ``THROUGHPUT`` key (``cuda`` for an unlisted one); None without a GPU."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(0).lower()
    except Exception:  # a broken driver is no reason to fail a dry run
        return None
    return next((key for key in PEAK_BF16 if key in name), "cuda")


def accelerator(named: str | None, bf16: bool) -> str:
    """``named`` (checked), else the detected GPU, else cuda for bf16 studies and cpu for the others."""
    if named:
        key = named.lower()
        if key not in THROUGHPUT:
            raise ConfigError(f"--device {named!r} is not one of {', '.join(THROUGHPUT)}")
        return key
    return detect_accelerator() or ("cuda" if bf16 else "cpu")


def shard_summary(source: Any) -> dict[str, Any] | None:
    """Size on disk and token counts of the token shards ``source`` names; None when it names none."""
    from sparsinglaw.data.shards import TokenShards, is_shard_dir  # here: the data package imports torch

    if not is_shard_dir(source):
        return None
    shards = TokenShards(source)
    totals = shards.manifest["totals"]
    return {"directory": str(Path(shards.directory)), "bytes": shards.nbytes(), "files": 2 * len(shards.shards),
            "train_tokens": totals["train_tokens"], "valid_tokens": totals["valid_tokens"],
            "vocab_size": shards.manifest["settings"]["vocab_size"]}
