"""Counting kept units during a pass: per unit group, per unit, per sequence and (optionally) per token.

Every target counts with it: FFN neurons (a group is one FFN, its units ``h_i``) and projection inputs (a
group is one projection, its units ``x_j``). The activation ratio (docs/paper.md section 1) is the fraction
of (token, neuron) pairs that are active. Overall it is total active pairs / total pairs over all FFNs,
which equals the mean of the per-layer ratios when every layer has the same width and sees the same tokens
(dense models).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sparsinglaw.capture.passes import BatchContext
from sparsinglaw.models.adapters import FFNLayer


class ActivityCounter:
    """Accumulates activity counts from boolean ``active`` masks of shape ``(..., width)``, one unit group
    (an ``FFNLayer``, a ``Projection``: ``index`` and ``width``) per call.

    ``position_weights``: each group's weight in the per-position sums (default 1: every (token, unit) pair
    counts once; projection inputs weigh by output rows, so that the pooled ratio is the share of weights
    read)."""

    def __init__(self, layers: Sequence[FFNLayer], n_sequences: int, seq_len: int, context: BatchContext,
                 per_token: bool = False, per_sequence_neurons: bool = False,
                 position_weights: Sequence[float] | None = None):
        self.context = context
        n = len(layers)
        self.position_weights = list(position_weights) if position_weights is not None else [1] * n
        self.active = torch.zeros(n, dtype=torch.float64)  # active (token, neuron) pairs per FFN
        self.slots = torch.zeros(n, dtype=torch.float64)  # all (token, neuron) pairs per FFN
        self.tokens = torch.zeros(n, dtype=torch.float64)  # tokens seen per FFN (routed tokens for experts)
        self.neuron_active = [torch.zeros(layer.width, dtype=torch.float64) for layer in layers]
        self.seq_active = torch.zeros(n_sequences, dtype=torch.float64)
        self.seq_slots = torch.zeros(n_sequences, dtype=torch.float64)
        # Per position, summed over FFNs: what blocks of tokens are resampled by (``metrics.blocks``).
        self.position_active = torch.zeros(n_sequences, seq_len, dtype=torch.float64)
        self.position_slots = torch.zeros(n_sequences, seq_len, dtype=torch.float64)
        self.unplaced = torch.zeros(1)  # calls whose counts could not be placed by position (routed experts)
        # Per-token, per-FFN activation ratio, only when asked (n_tokens x n_layers floats).
        self.token_layer = torch.zeros(n_sequences, seq_len, n, dtype=torch.float32) if per_token else None
        # Per-sequence, per-neuron active counts, only when asked (n_sequences x d_f per FFN): what resampling
        # sequences needs to put an interval on the dead-neuron ratio and the live neurons' activation ratio.
        self.seq_neuron_active = ([torch.zeros(n_sequences, layer.width, dtype=torch.float64) for layer in layers]
                                  if per_sequence_neurons else None)

    def add(self, layer: FFNLayer, active: torch.Tensor) -> None:
        """Count one FFN call's mask (bool or 0/1 float, shape ``(..., d_f)``)."""
        # Float32 sums are exact for the counts of one batch (< 2**24) and much faster than bool sums.
        mask = active if active.is_floating_point() else active.to(torch.float32)
        self.neuron_active[layer.index] += mask.reshape(-1, mask.shape[-1]).sum(dim=0).double().cpu()
        if self.seq_neuron_active is not None and mask.dim() == 3:  # (batch, seq, d_f): by sequence
            first = self.context.first_sequence
            self.seq_neuron_active[layer.index][first : first + mask.shape[0]] += mask.sum(dim=1).double().cpu()
        self.add_token_counts(layer, mask.sum(dim=-1))

    def add_token_counts(self, layer: FFNLayer, per_token: torch.Tensor) -> None:
        """Count one FFN call from its active count per token (shape ``mask.shape[:-1]``); the caller has
        added the per-neuron counts to ``neuron_active[layer.index]`` itself (as the C kernel does)."""
        i = layer.index
        n_tokens = per_token.numel()
        self.active[i] += float(per_token.sum())
        self.slots[i] += n_tokens * layer.width
        self.tokens[i] += n_tokens
        placed = per_token.dim() == 2 and per_token.shape[1] == self.position_active.shape[1]
        if per_token.dim() == 2:  # (batch, seq): attributable to sequences; routed expert tokens are not
            first, size = self.context.first_sequence, per_token.shape[0]
            counts = per_token.double().cpu()
            self.seq_active[first : first + size] += counts.sum(dim=1)
            self.seq_slots[first : first + size] += per_token.shape[1] * layer.width
            if placed:
                weight = self.position_weights[i]
                self.position_active[first : first + size] += counts * weight
                self.position_slots[first : first + size] += layer.width * weight
            if self.token_layer is not None:
                self.token_layer[first : first + size, :, i] = per_token.float().cpu() / layer.width
        if not placed:
            self.unplaced += 1

    def reduce(self, all_reduce) -> None:
        """Sum the counts of every process (sharded evaluation)."""
        for tensor in (self.active, self.slots, self.tokens, self.seq_active, self.seq_slots, self.position_active,
                       self.position_slots, self.unplaced, *self.neuron_active, *(self.seq_neuron_active or [])):
            all_reduce(tensor, "sum")
        if self.token_layer is not None:
            all_reduce(self.token_layer, "sum")

    # --- summaries -------------------------------------------------------------------------------
    @property
    def by_position(self) -> bool:
        """Whether every call's counts were placed by position (what intervals over blocks of tokens need)."""
        return not bool(self.unplaced.item())

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

    def live_activation_ratio(self, threshold: float = 1e-3) -> float | None:
        """The activation ratio over live neurons (not dead at ``threshold``): it separates neurons dying from
        live neurons specialising. None when every neuron is dead."""
        active = slots = 0.0
        for counts, freq, tokens in zip(self.neuron_active, self.neuron_frequency(), self.tokens):
            live = freq >= threshold
            active += float(counts[live].sum())
            slots += float(tokens) * int(live.sum())
        return active / slots if slots > 0 else None

    def never_active_ratio(self) -> float:
        """Share of neurons active on no token at all: with the exact-zero rule on a ReLU model, the neurons
        whose gate pre-activation is never positive (dead whatever threshold a metric picks)."""
        freqs = self.neuron_frequency()
        return sum(float((f == 0).sum()) for f in freqs) / sum(f.numel() for f in freqs)

    def population_interval(self, weights: np.ndarray, quantiles: tuple[float, float],
                            threshold: float = 1e-3) -> dict | None:
        """Intervals of the dead-neuron ratio and the live activation ratio from resampled sequences:
        ``weights`` (resamples x sequences, multinomial counts) and the two quantiles to read. None unless
        per-sequence neuron counts were kept and every FFN sees whole sequences (not routed experts)."""
        if self.seq_neuron_active is None or len(weights) == 0:
            return None
        counts = torch.cat(self.seq_neuron_active, dim=1).numpy()  # sequences x neurons
        width = sum(c.shape[1] for c in self.seq_neuron_active)
        seq_tokens = self.seq_slots.numpy() / width  # each FFN sees each of a sequence's tokens once
        if not np.allclose(self.tokens.numpy(), seq_tokens.sum()):
            return None
        dead, live = [], []
        for chunk in np.array_split(weights, max(1, len(weights) // 100)):  # bounded memory on big models
            freq = (chunk @ counts) / np.maximum(chunk @ seq_tokens, 1e-30)[:, None]
            alive = freq >= threshold
            dead.append(1.0 - alive.mean(axis=1))
            live.append((freq * alive).sum(axis=1) / np.maximum(alive.sum(axis=1), 1))
        dead_q, live_q = np.quantile(np.concatenate(dead), quantiles), np.quantile(np.concatenate(live), quantiles)
        return {"dead_neuron_ratio": [float(dead_q[0]), float(dead_q[1])],
                "live_activation_ratio": [float(live_q[0]), float(live_q[1])]}
