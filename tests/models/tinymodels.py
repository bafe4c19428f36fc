"""Helpers for the model tests (tests/models): tiny random models of every family, built in-process.

No hub access: HF_HUB_OFFLINE is set before transformers is imported (tests/conftest.py does the same; a
conftest.py here would shadow that one for `from helpers import ...`, so this is a plain module).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

VOCAB = 128


def build(config_cls_name: str, model_cls_name: str, seed: int = 0, **fields):
    """A tiny random ``model_cls_name`` in eval mode and float32 (``fields`` go to its config)."""
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, config_cls_name)(vocab_size=VOCAB, **fields)
    return getattr(transformers, model_cls_name)(config).float().eval()


def token_ids(batch: int = 2, length: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def no_hooks_left(model: torch.nn.Module) -> bool:
    """True when no forward (pre-)hook remains on any module of ``model``."""
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def tiny_tokenizer(vocab: int = VOCAB):
    """A word-level fast tokenizer with ``vocab`` entries, so checkpoints written by tests are complete."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"w{i}": i for i in range(3, vocab)}
    backend = Tokenizer(models.WordLevel(vocab=words, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
