"""Which activation a model's weights were trained with: a quick probe for a wrong ``--hidden-act``.

GGUF files do not record the activation, and a wrong one runs fine with absurd results. The probe runs a
few dense forwards with each candidate activation in place of the FFN's and compares perplexities: the
activation the weights were trained with gives by far the lowest."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from sparsinglaw.models import find_ffn_layers

CANDIDATES = ("silu", "gelu_pytorch_tanh", "relu")
# Enough tokens for a perplexity gap of 2x or more to be no accident: the candidates run on the same tokens, so
# their difference is paired (SmolLM2 run as ReLU reads 10x and more above SiLU on 2 x 64 tokens); each
# candidate costs a forward of these tokens, a quarter of a plain forward on 2,048 tokens at 2 x 128.
PROBE_SEQUENCES, PROBE_TOKENS = 2, 64
PROBE_WINDOW = (slice(0, PROBE_SEQUENCES), slice(0, PROBE_TOKENS))  # (sequences, positions) of the ids probed
FAR_ABOVE = 2.0  # the declared activation's perplexity over the best candidate's that is reported


def _activation_modules(model: Any) -> list[torch.nn.Module]:
    """The FFN activation modules (whose output is s), as the architecture adapters find them."""
    try:
        layers = find_ffn_layers(model)
    except Exception:  # noqa: BLE001 - no adapter, no probe: the other guardrails still run
        return []
    return [layer.act for layer in layers if getattr(layer, "act", None) is not None]


def _mean_nll(model: Any, ids: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1].float()
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)))


def probe_perplexities(model: Any, ids: torch.Tensor, names: tuple[str, ...] = CANDIDATES,
                       known: dict[str, float] | None = None) -> dict[str, float]:
    """Dense perplexity on ``ids`` (a few sequences of token ids) with each activation in ``names`` in place
    of the model's own; {} when the model's FFN activations are not modules the probe can replace. ``known``:
    perplexities already measured on the probe's window (the model's own activation, from a measurement's
    dense pass: a causal LM's losses there do not depend on later tokens), not run again."""
    from transformers.activations import ACT2FN

    modules = _activation_modules(model)
    if not modules:
        return {}
    ids = ids[PROBE_WINDOW].to(next(model.parameters()).device)
    out = {name: ppl for name, ppl in (known or {}).items() if name in names}
    for name in (n for n in names if n not in out):
        act = ACT2FN[name]
        handles = [m.register_forward_hook(lambda _m, args, _out, act=act: act(args[0])) for m in modules]
        try:
            out[name] = math.exp(_mean_nll(model, ids))
        finally:
            for handle in handles:
                handle.remove()
    return out


def activation_warnings(model: Any, declared: str | None, ids: torch.Tensor | None,
                        declared_ppl: float | None = None) -> list[str]:
    """One line when the weights look like another activation than ``declared``: a candidate gives a dense
    perplexity ``FAR_ABOVE`` times lower on the same tokens. [] when all is well or nothing can be probed.
    ``declared_ppl``: the declared activation's perplexity on the probe's window, if already measured."""
    if ids is None or not declared or ids.ndim != 2 or ids.shape[1] < 2:
        return []
    from transformers.activations import ACT2FN

    names = tuple(dict.fromkeys((declared, *CANDIDATES))) if declared in ACT2FN else CANDIDATES
    ppl = probe_perplexities(model, ids, names, None if declared_ppl is None else {declared: declared_ppl})
    if declared not in ppl:
        return []
    best = min(ppl, key=ppl.get)
    if best == declared or not ppl[declared] > FAR_ABOVE * ppl[best]:
        return []
    return [f"the weights look like {best}, not {declared}: on the same {min(len(ids), PROBE_SEQUENCES)} x "
            f"{min(ids.shape[1], PROBE_TOKENS)} tokens the dense perplexity is {ppl[declared]:.4g} with {declared} "
            f"and {ppl[best]:.4g} with {best}; measure with --hidden-act {best} (the sparsity of a model run with "
            "the wrong activation means nothing)"]
