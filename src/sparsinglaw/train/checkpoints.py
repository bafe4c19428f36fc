"""The run's config guard and the trainer's resume quirks. What a run keeps on disk (its names, the
complete checkpoints, the validation sequences) is ``store.runs``, which the tracker and the study read too.
``tensorboard/`` in ``RUN_DIR`` holds TensorBoard events when it is installed.
"""

from __future__ import annotations

import ast
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.provenance import stamp
from sparsinglaw.store.runs import RUN_CONFIG, RUN_INFO, checkpoint_dirs
from sparsinglaw.train.config import load_config

log = logging.getLogger("sparsinglaw")

# The output embedding of a model with tied embeddings: save_pretrained stores the shared tensor once, under the
# input embedding's name, so a resumed Trainer reports it "missing" although it is re-tied on load.
TIED_OUTPUT_KEYS = frozenset({"lm_head.weight"})
_MISSING_KEYS = "There were missing keys in the checkpoint model loaded: "


class TiedKeysFilter(logging.Filter):
    """Drops the Trainer's resume warning when the only "missing" keys are tied output embeddings (a false
    alarm on every resume of a tied model); any other missing key is still reported."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(_MISSING_KEYS):
            return True
        try:
            keys = ast.literal_eval(message[len(_MISSING_KEYS):].rstrip("."))
        except (ValueError, SyntaxError):
            return True
        return not (isinstance(keys, list) and keys and set(keys) <= TIED_OUTPUT_KEYS)


def quiet_tied_key_warnings() -> None:
    """Install ``TiedKeysFilter`` on transformers' Trainer logger (once)."""
    trainer_log = logging.getLogger("transformers.trainer")
    if not any(isinstance(f, TiedKeysFilter) for f in trainer_log.filters):
        trainer_log.addFilter(TiedKeysFilter())


quiet_tied_key_warnings()  # the trainer imports this module before it resumes anything


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def guard_run_dir(cfg, *, force: bool, world_size: int) -> dict[str, Any]:
    """Create the run directory's records, or check that an existing one was made by the same config.

    A different config (anything that changes the trained weights) is refused unless ``force``; with
    ``force`` the old config is kept beside the new one (``run.<fingerprint>.toml``) and training continues
    from the directory's checkpoints under the new config.
    """
    run_dir = Path(cfg.run_dir)
    info_path = run_dir / RUN_INFO
    if info_path.is_file():
        old_info = json.loads(info_path.read_text(encoding="utf-8"))
        old_cfg = load_config(run_dir / RUN_CONFIG)
        changed = _differences(old_cfg.result_dict(), cfg.result_dict())
        if changed and not checkpoint_dirs(run_dir):  # nothing trained under the old config: nothing to keep
            log.info("%s holds no checkpoint of its earlier config (differs in %s): starting it with this one",
                     run_dir, ", ".join(changed[:6]))
            shutil.rmtree(run_dir / "tokenizer", ignore_errors=True)  # trained on the old config's data
            changed = []
        if changed and not force:
            raise ConfigError(
                f"run_dir={str(run_dir)!r} holds a run with a different config (differs in {', '.join(changed[:6])}); "
                "use another run_dir, or pass --force to continue it with the new config"
            )
        if changed:
            shutil.copy2(run_dir / RUN_CONFIG, run_dir / f"run.{old_info['fingerprint']}.toml")
            log.warning("continuing %s with a changed config (%s)", run_dir, ", ".join(changed))
        elif old_info.get("world_tokens_per_step") != cfg.tokens_per_step(world_size) and checkpoint_dirs(run_dir):
            raise ConfigError(
                f"run_dir={str(run_dir)!r} was trained with {old_info.get('world_tokens_per_step')} tokens per step; "
                f"this launch gives {cfg.tokens_per_step(world_size)} ({world_size} process(es)): relaunch with the "
                "same number of processes so the data order and tokens seen stay exact"
            )
    info = {
        "run_id": run_dir.resolve().name, "fingerprint": cfg.fingerprint(), "world_size": world_size,
        "world_tokens_per_step": cfg.tokens_per_step(world_size), "provenance": stamp(cfg.to_dict()),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / RUN_CONFIG)
    atomic_write_json(info_path, info)
    return info
