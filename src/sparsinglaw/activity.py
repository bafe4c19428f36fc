"""Counting active neurons during a pass: per layer, per neuron, per sequence and (optionally) per token.

The activation ratio (docs/paper.md section 1) is the fraction of (token, neuron) pairs that are active.
Overall it is total active pairs / total pairs over all FFNs, which equals the mean of the per-layer
ratios when every layer has the same width and sees the same tokens (dense models).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparsinglaw.engine import BatchContext
from sparsinglaw.models.adapters import FFNLayer


class ActivityCounter:
    """Accumulates activity counts from boolean ``active`` masks of shape ``(..., d_f)``."""

    def __init__(self, layers: Sequence[FFNLayer], n_sequences: int, seq_len: int, context: BatchContext,
                 per_token: bool = False):
        self.context = context
        n = len(layers)
        self.active = torch.zeros(n, dtype=torch.float64)  # active (token, neuron) pairs per FFN
        self.slots = torch.zeros(n, dtype=torch.float64)  # all (token, neuron) pairs per FFN
        self.tokens = torch.zeros(n, dtype=torch.float64)  # tokens seen per FFN (routed tokens for experts)
        self.neuron_active = [torch.zeros(layer.width, dtype=torch.float64) for layer in layers]
        self.seq_active = torch.zeros(n_sequences, dtype=torch.float64)
        self.seq_slots = torch.zeros(n_sequences, dtype=torch.float64)
        # Per position, summed over FFNs: what blocks of tokens are resampled by (``metrics.blocks``).
        self.position_active = torch.zeros(n_sequences, seq_len, dtype=torch.float64)
        self.position_slots = torch.zeros(n_sequences, seq_len, dtype=torch.float64)
        # Per-token, per-FFN activation ratio, only when asked (n_tokens x n_layers floats).
        self.token_layer = torch.zeros(n_sequences, seq_len, n, dtype=torch.float32) if per_token else None

    def add(self, layer: FFNLayer, active: torch.Tensor) -> None:
        """Count one FFN call's mask (bool or 0/1 float, shape ``(..., d_f)``)."""
        # Float32 sums are exact for the counts of one batch (< 2**24) and much faster than bool sums.
        mask = active if active.is_floating_point() else active.to(torch.float32)
        self.neuron_active[layer.index] += mask.reshape(-1, mask.shape[-1]).sum(dim=0).double().cpu()
        self.add_token_counts(layer, mask.sum(dim=-1))

    def add_token_counts(self, layer: FFNLayer, per_token: torch.Tensor) -> None:
        """Count one FFN call from its active count per token (shape ``mask.shape[:-1]``); the caller has
        added the per-neuron counts to ``neuron_active[layer.index]`` itself (as the C kernel does)."""
        i = layer.index
        n_tokens = per_token.numel()
        self.active[i] += float(per_token.sum())
        self.slots[i] += n_tokens * layer.width
        self.tokens[i] += n_tokens
        if per_token.dim() == 2:  # (batch, seq): attributable to sequences; routed expert tokens are not
            first, size = self.context.first_sequence, per_token.shape[0]
            counts = per_token.double().cpu()
            self.seq_active[first : first + size] += counts.sum(dim=1)
            self.seq_slots[first : first + size] += per_token.shape[1] * layer.width
            if counts.shape[1] == self.position_active.shape[1]:
                self.position_active[first : first + size] += counts
                self.position_slots[first : first + size] += layer.width
            if self.token_layer is not None:
                self.token_layer[first : first + size, :, i] = per_token.float().cpu() / layer.width

    def reduce(self, all_reduce) -> None:
        """Sum the counts of every process (sharded evaluation)."""
        for tensor in (self.active, self.slots, self.tokens, self.seq_active, self.seq_slots, self.position_active,
                       self.position_slots, *self.neuron_active):
            all_reduce(tensor, "sum")
        if self.token_layer is not None:
            all_reduce(self.token_layer, "sum")

    # --- summaries -------------------------------------------------------------------------------
    @property
    def activation_ratio(self) -> float:
        return float(self.active.sum() / self.slots.sum()) if self.slots.sum() > 0 else float("nan")

    def layer_ratios(self) -> list[float]:
        return [float(a / s) if s > 0 else float("nan") for a, s in zip(self.active, self.slots)]

    def neuron_frequency(self) -> list[torch.Tensor]:
        """Per-neuron fraction of (routed) tokens on which it is active."""
        return [counts / max(float(t), 1.0) for counts, t in zip(self.neuron_active, self.tokens)]

    def dead_ratio(self, threshold: float = 1e-3) -> tuple[float, list[float]]:
        """Share of neurons active on fewer than ``threshold`` of tokens (docs/paper.md section 2.8: 0.1%), overall and per FFN."""
        freqs = self.neuron_frequency()
        per_layer = [float((f < threshold).double().mean()) for f in freqs]
        dead = sum(float((f < threshold).sum()) for f in freqs)
        return dead / sum(f.numel() for f in freqs), per_layer
