"""A converted copy of each GGUF file, so a quantized model is parsed and de-quantized once, not per load.

The first load writes the float32 model, config and tokenizer to ``cache_root()/gguf/NAME-SIZE-MTIME/``
(through a temporary directory, then renamed); later loads read it. ``SPARSINGLAW_GGUF_CACHE=0`` turns it off."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from sparsinglaw.fileio import cache_root, make_shareable_dir

log = logging.getLogger("sparsinglaw.models")

COMPLETE = "converted-from.txt"  # written last: the directory is complete


def enabled() -> bool:
    return os.environ.get("SPARSINGLAW_GGUF_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def converted_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    return cache_root() / "gguf" / f"{gguf.stem}-{stat.st_size}-{stat.st_mtime_ns}"


def cached_copy(gguf: Path) -> Path | None:
    """The converted directory of ``gguf`` when the cache is on and holds a complete one."""
    if not enabled():
        return None
    target = converted_dir(gguf)
    return target if (target / COMPLETE).is_file() else None


def write_copy(gguf: Path, model, tokenizer, raw_config: dict) -> Path | None:
    """Save ``model`` (float32, as loaded from ``gguf``) and ``tokenizer`` as the converted copy, its
    config's fields in ``raw_config`` put back as the GGUF gave them (a caller's activation override is
    not the file's); a cache that cannot be written is logged and skipped (the load already succeeded)."""
    if not enabled():
        return None
    target = converted_dir(gguf)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = make_shareable_dir(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _save_weights(model, scratch, raw_config)
            tokenizer.save_pretrained(scratch)
            (scratch / COMPLETE).write_text(f"{gguf.resolve()}\n", encoding="utf-8")
            if target.exists():  # another process converted it meanwhile: keep theirs
                return target
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except (OSError, AttributeError, TypeError, ValueError, RuntimeError) as err:  # a cache, never the load's failure
        log.warning("could not cache the converted %s (%s); the next load converts it again", gguf.name, err)
        return None
    return target


def _save_weights(model, directory: Path, raw_config: dict) -> None:
    """The weights as safetensors and the config as the GGUF gave it. transformers refuses
    ``save_pretrained`` on a model it loaded from GGUF (it counts as quantized, though the tensors are
    already de-quantized), so the state dict is written directly (tied tensors once)."""
    from safetensors.torch import save_model

    save_model(model, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config.update(raw_config)
    (directory / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
