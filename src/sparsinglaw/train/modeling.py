"""Build a transformers causal LM from a ``ModelConfig``: the checkpoints are then standard model directories.

- gated FFN, no muP: ``LlamaConfig`` (``down(act(gate x) * up x)``);
- gated FFN with the study's muP-style scalings: ``GraniteConfig``, whose multipliers are exactly MiniCPM's
  (embedding x scale_emb; each residual branch x scale_depth / sqrt(L); logits / (d / dim_model_base);
  attention keeps the usual 1 / sqrt(head_dim));
- non-gated FFN: ``GPTNeoXConfig`` with sequential residuals (``h = act(W_in x)``, rotary attention).
Activations are transformers ``ACT2FN`` names, so any tool that reads ``config.json`` rebuilds the same model.
"""

from __future__ import annotations

import math

import torch

from sparsinglaw.train.shapes import Shape, resolve_shape

EMBEDDING_NAMES = ("embed_tokens", "embed_in", "embed_out", "lm_head", "wte", "wpe")


def hf_config(model_cfg, vocab_size: int, max_positions: int, *, bos_id: int | None, eos_id: int | None):
    """The transformers config for ``model_cfg`` (see the module docstring for which family)."""
    shape = resolve_shape(model_cfg)
    common = dict(
        vocab_size=vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        max_position_embeddings=max_positions, hidden_act=model_cfg.activation,
        initializer_range=model_cfg.init_std, tie_word_embeddings=model_cfg.tie_embeddings,
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )
    if not model_cfg.gated:
        from transformers import GPTNeoXConfig

        return GPTNeoXConfig(**common, use_parallel_residual=False, rotary_pct=1.0, attention_dropout=0.0,
                             hidden_dropout=0.0, rope_theta=model_cfg.rope_theta)
    gated = dict(common, num_key_value_heads=shape.num_kv_heads, head_dim=shape.head_dim,
                 attention_bias=False, mlp_bias=False, rope_theta=model_cfg.rope_theta)
    if not model_cfg.mup:
        from transformers import LlamaConfig

        return LlamaConfig(**gated)
    from transformers import GraniteConfig

    return GraniteConfig(
        **gated,
        embedding_multiplier=model_cfg.scale_emb,
        residual_multiplier=model_cfg.scale_depth / math.sqrt(shape.num_layers),
        logits_scaling=shape.hidden_size / model_cfg.dim_model_base,
        attention_multiplier=shape.head_dim**-0.5,
    )


def _set_rope(config, theta: float) -> None:
    """transformers 5 keeps rope settings in ``rope_parameters``; make sure our theta is the one used."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict):
        params["rope_theta"] = theta


def build_model(model_cfg, vocab_size: int, max_positions: int, *, bos_id=None, eos_id=None, device=None):
    """A freshly initialised causal LM (seed torch before calling for reproducible weights)."""
    from transformers import AutoModelForCausalLM

    config = hf_config(model_cfg, vocab_size, max_positions, bos_id=bos_id, eos_id=eos_id)
    _set_rope(config, model_cfg.rope_theta)
    if device == "meta":
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    return AutoModelForCausalLM.from_config(config)


def count_parameters(model) -> dict[str, int]:
    """Exact parameter counts; tied embeddings are counted once."""
    seen: set[int] = set()
    embedding = non_embedding = 0
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            continue
        seen.add(id(param))
        if any(part in name for part in EMBEDDING_NAMES):
            embedding += param.numel()
        else:
            non_embedding += param.numel()
    return {"embedding": embedding, "non_embedding": non_embedding, "total": embedding + non_embedding}


def describe(model_cfg, vocab_size: int, max_positions: int) -> dict:
    """Shape and exact parameter counts without allocating weights (the model is built on the meta device)."""
    shape: Shape = resolve_shape(model_cfg)
    model = build_model(model_cfg, vocab_size, max_positions, device="meta")
    return {
        "family": type(model).__name__,
        "shape": shape.to_dict(),
        "vocab_size": vocab_size,
        "parameters": count_parameters(model),
    }
