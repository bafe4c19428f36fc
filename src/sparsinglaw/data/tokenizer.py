"""The run's tokenizer: a byte-level BPE trained on the training documents, or an existing one reused.

Byte-level BPE (GPT-2 style) never meets an unknown character, so any text trains and tokenizes. The
tokenizer is saved in the run directory (``RUN_DIR/tokenizer``) and in every checkpoint, and a resumed run
reloads the saved one instead of training again, so token ids never change within a run.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import make_shareable_dir

log = logging.getLogger("sparsinglaw")

EOS = "<|endoftext|>"


def train_bpe(docs: list[str], vocab_size: int, *, min_frequency: int = 2, max_chars: int | None = None):
    """A ``PreTrainedTokenizerFast`` with a byte-level BPE of ``vocab_size`` trained on ``docs``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    def texts():
        used = 0
        for doc in docs:
            yield doc
            used += len(doc)
            if max_chars is not None and used >= max_chars:
                return

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts(), trainer=trainer)
    # One special token serves as BOS, EOS (document separator in the packed stream) and padding.
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS)


def load_tokenizer(path: str | Path):
    """A saved tokenizer from a local path (never the hub: runs must not download)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"tokenizer.path={str(path)!r} cannot be loaded: {str(err).splitlines()[0]}") from None
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"tokenizer.path={str(path)!r} has no EOS token, needed to separate documents")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prepare_tokenizer(cfg, run_dir: Path, train_docs: list[str]):
    """The run's tokenizer: reload ``RUN_DIR/tokenizer`` if present, else reuse ``cfg.path`` or train one."""
    saved = run_dir / "tokenizer"
    if (saved / "tokenizer_config.json").is_file():
        return load_tokenizer(saved)
    if cfg.path:
        tokenizer = load_tokenizer(cfg.path)
    else:
        log.info("training a byte-level BPE tokenizer (vocabulary %d)", cfg.vocab_size)
        tokenizer = train_bpe(train_docs, cfg.vocab_size, min_frequency=cfg.min_frequency,
                              max_chars=cfg.max_train_chars)
    _save_atomically(tokenizer, saved)
    return tokenizer


def _save_atomically(tokenizer, target: Path) -> None:
    """Save into a temporary directory then rename, so a kill never leaves a half-saved tokenizer."""
    target.parent.mkdir(parents=True, exist_ok=True)

    tmp = make_shareable_dir(tempfile.mkdtemp(prefix=".tokenizer.", dir=target.parent))
    try:
        tokenizer.save_pretrained(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
