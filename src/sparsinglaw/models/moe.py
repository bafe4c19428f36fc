"""Mixture-of-experts FFNs (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE): one ``FFNLayer`` per expert.

transformers fuses a block's experts into 3-D parameters with no per-expert module to hook, so this
registers an experts implementation, ``"sparsinglaw_recording"``: the eager per-expert loop, where an
attached callback sees ``h`` and ``s`` of the tokens routed to its expert and may replace ``h``. With
nothing attached its outputs are bitwise those of ``"eager"``; ``MoEAdapter.find_layers`` switches the
model to it, so hooked and plain passes share one numerical path."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn
from transformers.integrations.moe import ExpertsInterface, _default_apply_gate

from sparsinglaw.errors import ModelError
from sparsinglaw.models.adapters import (
    FFNAdapter,
    FFNLayer,
    Handle,
    HCallback,
    ModuleFFNLayer,
    decoder_blocks,
    linear_weight,
)

RECORDING = "sparsinglaw_recording"

# experts module -> {expert id: [callbacks in attach order]}; weak so a discarded model is not kept alive.
_CALLBACKS: weakref.WeakKeyDictionary[nn.Module, dict[int, list[tuple[FFNLayer, HCallback]]]] = (
    weakref.WeakKeyDictionary()
)


def _expert_ffn(experts: nn.Module, e: int, x: torch.Tensor) -> torch.Tensor:
    """Expert ``e`` on its routed tokens ``x``; calls the attached callbacks between activation and down."""
    up_weight = experts.gate_up_proj[e] if experts.has_gate else experts.up_proj[e]
    proj = _linear(experts, x, up_weight, "gate_up_proj_bias" if experts.has_gate else "up_proj_bias", e)
    if not experts.has_gate:
        h = s = experts.act_fn(proj)
    elif type(experts)._apply_gate is _default_apply_gate:
        # Same operations as transformers' default gate, split so the activation output s is visible.
        gate, up = proj.chunk(2, dim=-1)
        s = experts.act_fn(gate)
        h = s * up
    else:
        # A custom gate (e.g. clamped or interleaved layouts) hides s; metrics ranking by s get h instead.
        h = s = experts._apply_gate(proj)
    for layer, callback in _CALLBACKS.get(experts, {}).get(e, ()):
        new_h = callback(layer, h, s)
        if new_h is not None:
            h = new_h
    return _linear(experts, h, experts.down_proj[e], "down_proj_bias", e)


def _linear(experts: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias_name: str, e: int) -> torch.Tensor:
    """``nn.functional.linear`` honouring the experts' storage flags (transposed weights, biases)."""
    bias = getattr(experts, bias_name)[e] if experts.has_bias else None
    if experts.is_transposed:
        out = x @ weight
        return out + bias if bias is not None else out
    return nn.functional.linear(x, weight, bias)


def recording_experts_forward(
    self: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
) -> torch.Tensor:
    """The eager experts loop (as in ``MixtralExperts.forward``) with per-expert callbacks.

    ``hidden_states`` is ``(n_tokens, d_model)``; ``top_k_index``/``top_k_weights`` are ``(n_tokens, k)``.
    """
    final_hidden_states = torch.zeros_like(hidden_states)
    with torch.no_grad():
        expert_mask = nn.functional.one_hot(top_k_index, num_classes=self.num_experts + 1).permute(2, 1, 0)
        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
    for expert_idx in expert_hit:
        e = int(expert_idx[0])
        if e == self.num_experts:  # expert-parallel sentinel: not on this rank
            continue
        top_k_pos, token_idx = torch.where(expert_mask[e])
        out = _expert_ffn(self, e, hidden_states[token_idx])
        if getattr(self, "has_post_expert_norm", False):
            out = self.post_expert_norm(out)
        out = out * top_k_weights[token_idx, top_k_pos, None]
        final_hidden_states.index_add_(0, token_idx, out.to(final_hidden_states.dtype))
    return final_hidden_states


ExpertsInterface.register(RECORDING, recording_experts_forward)


class _ExpertHandle:
    def __init__(self, experts: nn.Module, expert: int, entry: tuple[FFNLayer, HCallback]):
        self._experts = weakref.ref(experts)
        self._expert = expert
        self._entry = entry

    def remove(self) -> None:
        experts = self._experts()
        per_expert = _CALLBACKS.get(experts, {}) if experts is not None else {}
        entries = per_expert.get(self._expert, [])
        if self._entry in entries:
            entries.remove(self._entry)
        if not entries:
            per_expert.pop(self._expert, None)
        if experts is not None and not per_expert:
            _CALLBACKS.pop(experts, None)


class ExpertFFNLayer(FFNLayer):
    """Expert ``expert`` of a fused experts module; its callback sees only the tokens routed to it."""

    def __init__(self, *, experts: nn.Module, **kw):
        super().__init__(**kw)
        self.experts = experts

    def down_weight(self) -> torch.Tensor:
        weight = self.experts.down_proj[self.expert]
        return weight.T if self.experts.is_transposed else weight

    def attach(self, callback: HCallback) -> Handle:
        config = self.experts.config
        if config._experts_implementation != RECORDING:
            # Someone switched the implementation after discovery; per-expert hooks need ours.
            config._experts_implementation = RECORDING
        entry = (self, callback)
        _CALLBACKS.setdefault(self.experts, {}).setdefault(self.expert, []).append(entry)
        return _ExpertHandle(self.experts, self.expert, entry)


def _expert_layers(experts: nn.Module, block: int, first_index: int) -> list[FFNLayer]:
    down = experts.down_proj
    width = down.shape[1] if experts.is_transposed else down.shape[2]
    return [
        ExpertFFNLayer(
            experts=experts, index=first_index + e, name=f"layers.{block}.mlp.experts.{e}", block=block,
            width=width, gated=bool(experts.has_gate), expert=e,
        )
        for e in range(experts.num_experts)
    ]


def _dense_layer(mlp: nn.Module, name: str, block: int, index: int) -> FFNLayer:
    """A dense gated MLP inside an MoE model (Qwen2-MoE's shared expert, Qwen3-MoE's dense layers)."""
    return ModuleFFNLayer(
        index=index, name=name, block=block, width=mlp.down_proj.in_features, gated=True,
        down=mlp.down_proj, act=getattr(mlp, "act_fn", None), weight_fn=linear_weight(mlp.down_proj),
    )


def use_recording_experts(model: nn.Module) -> None:
    """Switch ``model`` to the recording experts implementation (a ModelError if it cannot switch)."""
    setter: Callable[[str], None] | None = getattr(model, "set_experts_implementation", None)
    if setter is None:
        raise ModelError(f"{type(model).__name__} has no pluggable experts implementation; register an adapter")
    setter(RECORDING)
    if model.config._experts_implementation != RECORDING:
        raise ModelError(
            f"{type(model).__name__} does not accept a custom experts implementation "
            f"(kept {model.config._experts_implementation!r}); register an adapter for it"
        )


class MoEAdapter(FFNAdapter):
    """Fused-experts MoE models: every expert is an FFNLayer; shared experts and dense layers too."""

    name = "moe"
    model_types = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")

    def find_layers(self, model: nn.Module) -> list[FFNLayer]:
        use_recording_experts(model)
        layers: list[FFNLayer] = []
        for block_index, block in enumerate(decoder_blocks(model)):
            mlp = getattr(block, "mlp", None)
            if mlp is None:
                continue
            if hasattr(mlp, "experts"):
                layers += _expert_layers(mlp.experts, block_index, len(layers))
                shared = getattr(mlp, "shared_expert", None)
                if shared is not None:
                    layers.append(_dense_layer(shared, f"layers.{block_index}.mlp.shared_expert", block_index,
                                               len(layers)))
            elif hasattr(mlp, "down_proj"):
                layers.append(_dense_layer(mlp, f"layers.{block_index}.mlp", block_index, len(layers)))
        return layers
