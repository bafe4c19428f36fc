"""Forward passes over evaluation data that return per-sequence losses.

Per-sequence sums (not just a mean) are kept so confidence intervals can resample sequences without
running the model again, and so sharded evaluation can gather them from every process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparsinglaw.data.batches import EvalData
from sparsinglaw.errors import NumericalError


@dataclass
class SequenceLosses:
    """Summed next-token NLL (nats) and the number of predicted tokens, per sequence."""

    nll: torch.Tensor  # (n_sequences,) float64
    tokens: torch.Tensor  # (n_sequences,) int64
    # (n_sequences, seq_len) float64: position t's NLL of token t + 1 (0 at the last position), so that intervals
    # and stop rules can resample blocks of tokens (``metrics.blocks``), not only whole sequences
    token_nll: torch.Tensor | None = None

    @property
    def mean_nll(self) -> float:
        return float(self.nll.sum() / self.tokens.sum())

    @property
    def ppl(self) -> float:
        return math.exp(self.mean_nll)


def model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        return torch.device("cpu")


@torch.no_grad()
def position_nll(logits: torch.Tensor, input_ids: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """NLL of token s+1 given its prefix at each position s, (batch, seq) float64 on the CPU; 0 at the last.
    Row chunks of the logits keep the log-softmax temporaries in cache."""
    batch, seq, vocab = logits.shape
    flat = logits.reshape(-1, vocab)
    # Position s predicts token s+1; each sequence's last position predicts nothing (ignored).
    targets = torch.cat([input_ids[:, 1:], torch.full_like(input_ids[:, :1], -100)], dim=1).reshape(-1)
    targets = targets.to(flat.device)
    nll = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
    for start in range(0, flat.shape[0], chunk):
        rows = slice(start, start + chunk)
        nll[rows] = F.cross_entropy(flat[rows].float(), targets[rows], reduction="none", ignore_index=-100)
    return nll.view(batch, seq).double().cpu()


class BatchContext:
    """Where in the evaluation data the current forward is; read by per-sequence statistics."""

    def __init__(self) -> None:
        self.first_sequence = 0
        self.batch_size = 0


@torch.no_grad()
def run_pass(model, data: EvalData, batch_size: int, context: BatchContext | None = None,
             progress=None, rank: int = 0, world_size: int = 1) -> SequenceLosses:
    """One forward pass over ``data`` (this process's shard of batches); hooks attached by the caller
    observe or modify it. Sequences of other shards keep NLL 0 here: the caller all-reduces."""
    device = model_device(model)
    per_position = torch.zeros(data.n_sequences, data.seq_len, dtype=torch.float64)
    tokens = torch.full((data.n_sequences,), data.seq_len - 1, dtype=torch.int64)
    for start, ids in data.batches(batch_size, rank=rank, world_size=world_size):
        if context is not None:
            context.first_sequence, context.batch_size = start, ids.shape[0]
        logits = model(input_ids=ids.to(device), use_cache=False).logits
        per_position[start : start + ids.shape[0]] = position_nll(logits, ids)
        if progress is not None:
            progress.update(ids.numel())
    nll = per_position.sum(dim=1)
    if not torch.isfinite(nll).all():
        raise NumericalError(
            "the loss is NaN or infinite (fp16/bf16 overflow?); measure in float32 (--dtype float32)"
        )
    return SequenceLosses(nll=nll, tokens=tokens, token_nll=per_position)
