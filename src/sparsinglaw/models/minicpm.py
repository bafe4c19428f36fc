"""The study's released checkpoints (MiniCPM format) loaded without their remote code.

MiniCPM's remote code no longer imports, but it is a Llama with three muP scalings, which transformers'
native Granite has too:

=================================  ======================================  ==================================
MiniCPM (remote code)              Granite (native)                        mapping
=================================  ======================================  ==================================
``embed(x) * scale_emb``           ``embed(x) * embedding_multiplier``     ``embedding_multiplier = scale_emb``
``h + f(h) * scale_depth/sqrt(L)``  ``h + f(h) * residual_multiplier``      ``scale_depth / sqrt(L)``
``lm_head(h / (d / d_base))``      ``lm_head(h) / logits_scaling``         ``logits_scaling = d / d_base``
softmax(q k^T / sqrt(head_dim))    softmax(q k^T * attention_multiplier)   ``1 / sqrt(head_dim)``
=================================  ======================================  ==================================

The logit scaling commutes with ``lm_head`` (no bias); weight names are Llama-style, so files load as they are."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sparsinglaw.errors import ModelError

MINICPM_REQUIRED = (
    "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size",
)


def read_config_json(directory: Path) -> dict[str, Any] | None:
    """``config.json`` of a model directory as a dict (None when absent); ModelError when unreadable."""
    path = directory / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read {path}: {err}; is it a valid JSON config?") from err


def is_minicpm(raw: dict[str, Any] | None) -> bool:
    return bool(raw) and str(raw.get("model_type", "")).lower() == "minicpm"


def minicpm_to_granite_config(raw: dict[str, Any]):
    """A ``GraniteConfig`` computing the same function as the MiniCPM config ``raw`` (a config.json dict)."""
    from transformers import GraniteConfig

    missing = [key for key in MINICPM_REQUIRED if key not in raw]
    if missing:
        raise ModelError(f"MiniCPM config.json lacks {', '.join(missing)}; is the checkpoint complete?")
    if raw.get("rope_scaling"):
        raise ModelError(f"MiniCPM rope_scaling={raw['rope_scaling']!r} is not supported; only plain RoPE is mapped")
    hidden, layers, heads = raw["hidden_size"], raw["num_hidden_layers"], raw["num_attention_heads"]
    head_dim = hidden // heads
    return GraniteConfig(
        vocab_size=raw["vocab_size"],
        hidden_size=hidden,
        intermediate_size=raw["intermediate_size"],
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=raw.get("num_key_value_heads") or heads,
        hidden_act=raw.get("hidden_act", "silu"),
        max_position_embeddings=raw.get("max_position_embeddings", 4096),
        rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
        tie_word_embeddings=raw.get("tie_word_embeddings", True),
        rope_parameters={"rope_type": "default", "rope_theta": float(raw.get("rope_theta", 10000.0))},
        attention_bias=raw.get("attention_bias", False),
        bos_token_id=raw.get("bos_token_id", 1),
        eos_token_id=raw.get("eos_token_id", 2),
        pad_token_id=raw.get("pad_token_id"),
        embedding_multiplier=float(raw.get("scale_emb", 1.0)),
        # Defaults are MiniCPMConfig's (scale_emb = scale_depth = dim_model_base = 1).
        residual_multiplier=float(raw.get("scale_depth", 1.0)) / math.sqrt(layers),
        logits_scaling=hidden / float(raw.get("dim_model_base", 1.0)),
        attention_multiplier=1.0 / math.sqrt(head_dim),
    )
