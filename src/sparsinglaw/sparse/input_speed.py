"""Decode tokens/s and projection latency, dense versus the input-sparse projections, side by side.

The input-thresholds counterpart of ``sparse.speed``: ``compare_input_speed(model, thresholds)`` swaps in
``sparse.input_sparse``'s modules once (input or combined thresholds: all seven projections of every block)
and, per batch size, alternates greedy decodes of the plain model (the modules swapped out) with decodes on
the sparse path; ratios are of medians over the repetitions, so a shared, noisy machine slows both alike.
Only decode steps are timed (the prefill takes the masked dense fallback). Weight bytes per decode step are
counted from the columns the modules actually read, plus every weight outside them (the output head, norms,
one embedding row); ``bound`` = dense bytes over those, the speedup a purely memory-bound decode would see.
Projection latency replays the inputs of real decode steps through each original projection and its
sparse module, alternating call by call, and sums the median per-call times over projections (one step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import torch

from sparsinglaw.errors import ConfigError
from sparsinglaw.sparse.input_sparse import DEFAULT_MAX_SHARE, MAX_TOKENS, InputSparseHandle, sparsify_inputs
from sparsinglaw.sparse.speed import (
    decode_inputs,
    dense_only_note,
    dense_only_warnings,
    greedy_decode,
    interleaved_decode,
    paired_latency,
    speedup_text,
    timing_note,
)
from sparsinglaw.tables import aligned_table

BYTES_PER_WEIGHT = 4.0  # float32 weights


@dataclass
class InputSpeedRow:
    batch: int
    dense_tokens_per_s: float  # generated tokens (all sequences) per second of decode
    sparse_tokens_per_s: float
    dense_projection_ms: float  # all swapped projections of one decode step
    sparse_projection_ms: float
    kept_share: float  # kept (token, input) pairs over offered ones, decode steps
    read_share: float  # weight columns read over the dense projections' (union over the batch)
    sparse_share: float  # share of decode projection calls on the sparse path (else dense fallback)
    bytes_ratio: float  # weight bytes per decode step (all weights) over the dense model's

    @property
    def decode_speedup(self) -> float:
        return self.sparse_tokens_per_s / self.dense_tokens_per_s

    @property
    def projection_speedup(self) -> float:
        return self.dense_projection_ms / self.sparse_projection_ms

    @property
    def bound(self) -> float:
        return 1.0 / self.bytes_ratio

    @property
    def of_bound(self) -> float:
        return self.decode_speedup / self.bound


@dataclass
class InputSpeedReport:
    model: str
    mode: str
    threads: int
    prompt_len: int
    new_tokens: int
    repeats: int
    policy: dict
    dense_mb_per_token: float
    rows: list[InputSpeedRow] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """A line per batch size at which no projection call ran sparsely: its two timings are both dense."""
        return dense_only_warnings(self.rows, "projection calls", lambda r: f"{r.kept_share:.0%} of inputs kept, "
                                   f"fallback above max_share={self.policy.get('max_share')}")

    def table(self) -> str:
        head = (f"{self.model}: {self.mode}; {self.threads} threads, prompt {self.prompt_len}, {self.new_tokens} new "
                f"tokens, medians of {self.repeats}; dense {self.dense_mb_per_token:.1f} MB of weights per step; "
                "fallback " + ", ".join(f"{k}={v}" for k, v in self.policy.items()))
        header = ["batch", "dense tok/s", "sparse tok/s", "speedup", "bound", "of bound", "dense proj ms",
                  "sparse proj ms", "kept", "read", "sparse"]
        body = [[r.batch, f"{r.dense_tokens_per_s:.1f}", f"{r.sparse_tokens_per_s:.1f}",
                 speedup_text(r, r.decode_speedup), f"{r.bound:.2f}x", f"{r.of_bound:.2f}",
                 f"{r.dense_projection_ms:.3f}", f"{r.sparse_projection_ms:.3f}", f"{r.kept_share:.2f}",
                 f"{r.read_share:.2f}", f"{r.sparse_share:.2f}"] for r in self.rows]
        lines = [head, aligned_table(header, body, left=0), timing_note(self.repeats)]
        lines += dense_only_note(self.rows)
        lines.append("speedup = sparse / dense tokens/s; bound = dense weight bytes per step over the sparse run's; "
                     "kept = kept (token, input) pairs; read = weight columns read (union over the batch); sparse = "
                     "share of projection calls on the sparse path (else dense fallback)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, obj in zip(data["rows"], self.rows):
            ran = obj.sparse_share > 0
            row.update(ran_sparsely=ran, decode_speedup=obj.decode_speedup if ran else None,
                       projection_speedup=obj.projection_speedup if ran else None, bound=obj.bound,
                       of_bound=obj.of_bound if ran else None)
        data["warnings"] = self.warnings()
        return data


def other_weights(model, handle: InputSparseHandle) -> int:
    """Weights a decode step reads outside the swapped projections (head, norms, one embedding row)."""
    from sparsinglaw.inputs.measure import other_weight_count

    return other_weight_count(model, [SimpleNamespace(module=m.original) for m in handle.modules.values()])


def _decode_row(handle: InputSparseHandle, prompt: torch.Tensor, new_tokens: int, repeats: int,
                other_bytes: float) -> InputSpeedRow:
    batch, steps = prompt.shape[0], new_tokens - 1
    dense, sparse = interleaved_decode(handle, prompt, new_tokens, repeats, handle.reset_counters)
    projected = handle.dense_weight_bytes(BYTES_PER_WEIGHT)
    read = handle.weight_bytes_read(BYTES_PER_WEIGHT) / steps
    stats = (handle.pair_share(), read / projected, 1.0 - handle.dense_share(),
             (read + other_bytes) / (projected + other_bytes))
    modules = list(handle.modules.values())
    inputs = decode_inputs(handle.model, modules, prompt, steps=min(8, steps))
    dense_ms, sparse_ms = paired_latency([(m.linear, m) for m in modules], inputs, repeats)
    generated = batch * steps
    return InputSpeedRow(batch, generated / dense, generated / sparse, dense_ms * 1e3, sparse_ms * 1e3, *stats)


def compare_input_speed(model, thresholds, *, prompts: torch.Tensor, batch_sizes: Sequence[int] = (1, 4),
                        new_tokens: int = 32, repeats: int = 3, max_share: float = DEFAULT_MAX_SHARE,
                        max_tokens: int = MAX_TOKENS, model_name: str = "in-memory", mode: str = "") -> InputSpeedReport:
    """Dense versus input-sparse decode speed and projection latency at each batch size (prompts:
    ``(N, prompt_len)``, the first ``batch`` rows are used). ``thresholds``: ``InputThresholds``,
    ``CombinedThresholds`` or an ``inputs.MethodResult``."""
    if new_tokens < 3 or repeats < 1:
        raise ConfigError(f"need new_tokens >= 3 and repeats >= 1, got {new_tokens}, {repeats}")
    if any(b < 1 for b in batch_sizes) or max(batch_sizes) > prompts.shape[0]:
        raise ConfigError(f"batch sizes {list(batch_sizes)} need >= 1 and at most {prompts.shape[0]} prompts")
    handle = sparsify_inputs(model, thresholds, max_share=max_share, max_tokens=max_tokens)
    try:
        other = other_weights(model, handle) * BYTES_PER_WEIGHT
        report = InputSpeedReport(model_name, mode or getattr(thresholds, "kind", "input"), torch.get_num_threads(),
                                  prompts.shape[1], new_tokens, repeats,
                                  {"max_share": max_share, "max_tokens": max_tokens},
                                  (handle.dense_weight_bytes(BYTES_PER_WEIGHT) + other) / 1e6)
        greedy_decode(model, prompts[:1], 3)  # warm-up (builds the kernel, touches the column-major copies)
        for batch in batch_sizes:
            report.rows.append(_decode_row(handle, prompts[:batch], new_tokens, repeats, other))
    finally:
        handle.restore()
    return report


__all__ = ["InputSpeedReport", "InputSpeedRow", "compare_input_speed"]
