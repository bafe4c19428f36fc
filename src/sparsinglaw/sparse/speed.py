"""Decode tokens/s and sparse-module latency, dense versus the sparse path, measured side by side.

One path per kind of sparse modules (a ``SpeedPath``), keyed by the thresholds kind's ``sparse_modules``:
``"ffn"`` (sparse FFNs) or ``"projections"`` (input-sparse projections), each falling back to dense per one
``SparsePolicy``. ``compare_speed`` swaps them in once and, per batch size, alternates decodes of the
plain model with decodes on the sparse path, timing decode steps only and reporting ratios of medians.
Module latency replays real decode inputs through each original module and its
sparse one. The projections path also counts weight bytes read per step (``bound``: the speedup a purely
memory-bound decode would see)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from types import SimpleNamespace
from typing import Any, ClassVar

import torch

from sparsinglaw.errors import ConfigError
from sparsinglaw.inputs.measure import other_weight_count
from sparsinglaw.sparse.convert import SparseHandle
from sparsinglaw.sparse.convert import sparsify as sparsify_ffns
from sparsinglaw.sparse.ffn import SparseFFN
from sparsinglaw.sparse.input_sparse import InputSparseHandle, InputSparseLinear, sparsify_inputs
from sparsinglaw.sparse.modules import SparsePolicy, SwappedModules, resolve_policy
from sparsinglaw.tables import aligned_table

BYTES_PER_WEIGHT = 4.0  # float32 weights


@dataclass
class DecodeRow:
    """One batch size's decode timings; subclasses add their modules' latency and counters."""

    batch: int
    dense_tokens_per_s: float  # generated tokens (all sequences) per second of decode
    sparse_tokens_per_s: float

    calls: ClassVar[str]  # what a fallen-back call is, for the warnings
    header: ClassVar[list[str]]  # the table's column names after "speedup"
    legend: ClassVar[str]  # the table's last line

    @property
    def decode_speedup(self) -> float:
        return self.sparse_tokens_per_s / self.dense_tokens_per_s

    @property
    def ran_sparsely(self) -> bool:
        return self.sparse_share > 0

    def to_dict(self) -> dict:
        """The row's fields, then whether it ran sparsely and its speedups (None where it did not)."""
        return {**asdict(self), "ran_sparsely": self.ran_sparsely, **self.speedups()}


@dataclass
class FFNSpeedRow(DecodeRow):
    dense_ffn_ms: float  # all FFNs of one decode step
    sparse_ffn_ms: float
    activation_ratio: float  # kept (token, neuron) pairs in the sparse decode
    computed_ratio: float  # share of up/down neuron projections computed (union over the batch; 1 = dense)
    sparse_share: float  # share of decode FFN calls that took the sparse path (the rest fell back)

    calls = "FFN calls"
    header = ["dense FFN ms", "sparse FFN ms", "FFN x", "act.ratio", "computed", "sparse"]
    legend = ("speedup = sparse / dense tokens/s; act.ratio = kept neurons per token; computed = neurons whose "
              "up/down rows were computed (union over the batch); sparse = share of FFN calls on the sparse path "
              "(else dense fallback)")

    @property
    def ffn_speedup(self) -> float:
        return self.dense_ffn_ms / self.sparse_ffn_ms

    def speedups(self) -> dict:
        ran = self.ran_sparsely
        return {"decode_speedup": self.decode_speedup if ran else None, "ffn_speedup": self.ffn_speedup if ran else None}

    def cells(self) -> list[str]:
        return [speedup_text(self, self.decode_speedup), f"{self.dense_ffn_ms:.3f}", f"{self.sparse_ffn_ms:.3f}",
                speedup_text(self, self.ffn_speedup), f"{self.activation_ratio:.3f}", f"{self.computed_ratio:.3f}",
                f"{self.sparse_share:.2f}"]

    def why_dense(self, policy: SparsePolicy) -> str:
        return f"{self.activation_ratio:.0%} of neurons active, fallback above max_share={policy.max_share}"


@dataclass
class InputSpeedRow(DecodeRow):
    dense_projection_ms: float  # all swapped projections of one decode step
    sparse_projection_ms: float
    kept_share: float  # kept (token, input) pairs over offered ones, decode steps
    read_share: float  # weight columns read over the dense projections' (union over the batch)
    sparse_share: float  # share of decode projection calls on the sparse path (else dense fallback)
    bytes_ratio: float  # weight bytes per decode step (all weights) over the dense model's

    calls = "projection calls"
    header = ["bound", "of bound", "dense proj ms", "sparse proj ms", "kept", "read", "sparse"]
    legend = ("speedup = sparse / dense tokens/s; bound = dense weight bytes per step over the sparse run's; kept = "
              "kept (token, input) pairs; read = weight columns read (union over the batch); sparse = share of "
              "projection calls on the sparse path (else dense fallback)")

    @property
    def projection_speedup(self) -> float:
        return self.dense_projection_ms / self.sparse_projection_ms

    @property
    def bound(self) -> float:
        return 1.0 / self.bytes_ratio

    @property
    def of_bound(self) -> float:
        return self.decode_speedup / self.bound

    def speedups(self) -> dict:
        ran = self.ran_sparsely
        return {"decode_speedup": self.decode_speedup if ran else None,
                "projection_speedup": self.projection_speedup if ran else None, "bound": self.bound,
                "of_bound": self.of_bound if ran else None}

    def cells(self) -> list[str]:
        return [speedup_text(self, self.decode_speedup), f"{self.bound:.2f}x", f"{self.of_bound:.2f}",
                f"{self.dense_projection_ms:.3f}", f"{self.sparse_projection_ms:.3f}", f"{self.kept_share:.2f}",
                f"{self.read_share:.2f}", f"{self.sparse_share:.2f}"]

    def why_dense(self, policy: SparsePolicy) -> str:
        return f"{self.kept_share:.0%} of inputs kept, fallback above max_share={policy.max_share}"


@dataclass
class SpeedReport:
    """One speed comparison: its setting (``policy``: the sparse modules' fallback, defaults filled in), one
    row per batch size. ``extra``: the path's own settings, written beside them (the projections' dense
    weight megabytes per step); ``notes``: the same in the table's head."""

    model: str
    mode: str  # "zeros-only", or the thresholds' kind and source
    threads: int
    prompt_len: int
    new_tokens: int
    repeats: int
    policy: SparsePolicy
    rows: list[DecodeRow] = field(default_factory=list)
    row_type: type[DecodeRow] = field(default=DecodeRow, repr=False)  # the path's row: its columns and legend
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """A line per batch size at which no call ran sparsely: its "sparse" timing is a dense one, so the
        ratio of the two is noise, not a speedup."""
        return [f"batch {r.batch}: nothing ran sparsely (every one of the {r.calls} fell back to dense: "
                f"{r.why_dense(self.policy)}); the two timings are both dense, so there is no speedup to report"
                for r in self.rows if not r.ran_sparsely]

    def table(self) -> str:
        head = "; ".join([f"{self.model}: {self.mode}", f"{self.threads} threads, prompt {self.prompt_len}, "
                          f"{self.new_tokens} new tokens, medians of {self.repeats}", *self.notes,
                          "fallback " + ", ".join(f"{k}={v}" for k, v in asdict(self.policy).items())])
        header = ["batch", "dense tok/s", "sparse tok/s", "speedup", *self.row_type.header]
        body = [[r.batch, f"{r.dense_tokens_per_s:.1f}", f"{r.sparse_tokens_per_s:.1f}", *r.cells()]
                for r in self.rows]
        lines = [head, aligned_table(header, body, left=0),
                 f"timings and speedups: medians of {self.repeats} interleaved repeats (no interval)"]
        if not all(r.ran_sparsely for r in self.rows):
            lines.append("dense (speedup column) = nothing ran sparsely at that batch size: every call fell back to "
                         "dense, so there is no speedup to report")
        lines.append(self.row_type.legend)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        setting = {name: getattr(self, name) for name in ("model", "mode", "threads", "prompt_len", "new_tokens",
                                                          "repeats")}
        return {**setting, "policy": asdict(self.policy), **self.extra, "rows": [r.to_dict() for r in self.rows],
                "warnings": self.warnings()}


def speedup_text(row: DecodeRow, value: float) -> str:
    """A speedup cell: ``1.23x``, or ``dense`` where no call ran sparsely (dense timed against dense)."""
    return f"{value:.2f}x" if row.ran_sparsely else "dense"


def greedy_decode(model, prompt: torch.Tensor, new_tokens: int,
                  after_prefill: Callable[[], None] | None = None) -> tuple[torch.Tensor, float]:
    """(generated ids (B, new_tokens), seconds spent in the decode steps after the prefill)."""
    with torch.inference_mode():
        out = model(input_ids=prompt, use_cache=True)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens = [token]
        if after_prefill is not None:
            after_prefill()
        start = time.perf_counter()
        cache = out.past_key_values
        for _ in range(new_tokens - 1):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(token)
        return torch.cat(tokens, dim=1), time.perf_counter() - start


def decode_inputs(model, modules: list, prompt: torch.Tensor, steps: int) -> list[list[torch.Tensor]]:
    """Per module of ``modules``, its inputs in ``steps`` real decode steps of ``model`` (prefill excluded)."""
    inputs: list[list[torch.Tensor]] = [[] for _ in modules]
    record = [False]
    hooks = [m.register_forward_pre_hook(
        lambda _m, args, i=i: inputs[i].append(args[0].detach().clone()) if record[0] else None)
        for i, m in enumerate(modules)]
    try:
        greedy_decode(model, prompt, steps + 1, after_prefill=lambda: record.__setitem__(0, True))
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def paired_latency(pairs: list[tuple[Callable, Callable]], inputs: list[list[torch.Tensor]],
                   repeats: int) -> tuple[float, float]:
    """(dense, sparse) seconds per decode step of every (dense, sparse) module pair: per pair the median
    per-call time, the two alternating call by call on the same input (preempted calls are outliers),
    summed over pairs."""
    total = {"dense": 0.0, "sparse": 0.0}
    with torch.inference_mode():
        for (dense, sparse), xs in zip(pairs, inputs):
            times: dict[str, list[float]] = {"dense": [], "sparse": []}
            order = (("dense", dense), ("sparse", sparse))
            for rep in range(repeats):
                for x in xs:
                    for name, fn in order if rep % 2 == 0 else order[::-1]:
                        start = time.perf_counter()
                        fn(x)
                        times[name].append(time.perf_counter() - start)
            for name in total:
                total[name] += statistics.median(times[name])
    return total["dense"], total["sparse"]


def interleaved_decode(handle, prompt: torch.Tensor, new_tokens: int, repeats: int,
                       reset: Callable[[], None]) -> tuple[float, float]:
    """(dense, sparse) median decode seconds, the handle's sparse modules off and on in turn; ``reset``
    clears its counters after each sparse prefill, so they count decode steps only."""
    dense, sparse = [], []
    for _ in range(repeats):
        handle.set_enabled(False)
        dense.append(greedy_decode(handle.model, prompt, new_tokens)[1])
        handle.set_enabled(True)
        sparse.append(greedy_decode(handle.model, prompt, new_tokens, after_prefill=reset)[1])
    return statistics.median(dense), statistics.median(sparse)


def _swap_ffns(model, thresholds, zeros_only: bool, policy: SparsePolicy) -> SparseHandle:
    if thresholds is None and not zeros_only:
        raise ConfigError("pass thresholds (--thresholds RESULT.json) or zeros_only (--zeros-only, ReLU models)")
    return sparsify_ffns(model, thresholds, zeros_only=zeros_only, policy=policy)


def _ffn_counts(handle: SparseHandle, steps: int) -> tuple:
    return handle.activation_ratio(), handle.computed_ratio(), handle.sparse_share()


def _swap_projections(model, thresholds, zeros_only: bool, policy: SparsePolicy) -> InputSparseHandle:
    return sparsify_inputs(model, thresholds, policy=policy)


def _projection_counts(handle: InputSparseHandle, steps: int) -> tuple:
    """(kept share, read share, sparse share, bytes ratio) of ``steps`` decode steps."""
    other = other_weights(handle.model, handle) * BYTES_PER_WEIGHT
    projected = handle.dense_weight_bytes(BYTES_PER_WEIGHT)
    read = handle.weight_bytes_read(BYTES_PER_WEIGHT) / steps
    return (handle.pair_share(), read / projected, 1.0 - handle.dense_share(),
            (read + other) / (projected + other))


def _projection_layout(handle: InputSparseHandle) -> dict:
    other = other_weights(handle.model, handle) * BYTES_PER_WEIGHT
    dense_mb = (handle.dense_weight_bytes(BYTES_PER_WEIGHT) + other) / 1e6
    return {"extra": {"dense_mb_per_token": dense_mb}, "notes": [f"dense {dense_mb:.1f} MB of weights per step"]}


@dataclass(frozen=True)
class SpeedPath:
    """One kind of sparse modules under ``compare_speed``: their class (``modules``: its ``DEFAULT_POLICY``
    and ``TOKEN_LIMIT``), ``swap_in(model, thresholds, zeros_only, policy)`` giving their handle, the row a
    batch size gets (``row_type``, filled from ``counts(handle, decode steps)``), each module's dense form
    for the latency (``dense_of``) and what the report adds beside its setting (``layout(handle)``)."""

    modules: type
    swap_in: Callable[..., SwappedModules]
    row_type: type[DecodeRow]
    counts: Callable[[Any, int], tuple]
    dense_of: Callable
    layout: Callable[[Any], dict] = lambda handle: {}


SPEED_PATHS = {  # by the thresholds kind's ``sparse_modules``
    # the sparse FFNs: output thresholds, per-FFN values, or exact ReLU zeros (``zeros_only``)
    "ffn": SpeedPath(SparseFFN, _swap_ffns, FFNSpeedRow, _ffn_counts, attrgetter("original")),
    # the input-sparse projections, all seven of every block: input or combined thresholds
    "projections": SpeedPath(InputSparseLinear, _swap_projections, InputSpeedRow, _projection_counts,
                             attrgetter("linear"), _projection_layout),
}


def _decode_row(handle, path: SpeedPath, prompt: torch.Tensor, new_tokens: int, repeats: int) -> DecodeRow:
    """One batch size's row: decode timings, then ``path.counts`` (the handle's counters over the sparse
    decodes), then the latency of each module's dense form (``path.dense_of(module)``) against it."""
    batch, steps = prompt.shape[0], new_tokens - 1
    dense, sparse = interleaved_decode(handle, prompt, new_tokens, repeats, handle.reset_counters)
    stats = path.counts(handle, steps)
    modules = list(handle.modules.values())
    inputs = decode_inputs(handle.model, modules, prompt, steps=min(8, steps))
    dense_ms, sparse_ms = paired_latency([(path.dense_of(m), m) for m in modules], inputs, repeats)
    generated = batch * steps
    return path.row_type(batch, generated / dense, generated / sparse, dense_ms * 1e3, sparse_ms * 1e3, *stats)


def other_weights(model, handle: InputSparseHandle) -> int:
    """Weights a decode step reads outside the swapped projections (head, norms, one embedding row)."""
    return other_weight_count(model, [SimpleNamespace(module=m.original) for m in handle.modules.values()])


def speed_path(thresholds=None, zeros_only: bool = False) -> SpeedPath:
    """The path of ``thresholds``' sparse modules (the FFNs for ``zeros_only``, no thresholds or plain values)."""
    return SPEED_PATHS["ffn" if zeros_only else getattr(thresholds, "sparse_modules", "ffn")]


def describe(thresholds, source: str = "") -> str:
    """The report's mode for ``thresholds``: their kind (none for plain per-FFN values) and source."""
    return " ".join(part for part in (getattr(thresholds, "kind", ""), "thresholds", source) if part)


def compare_speed(model, thresholds=None, *, prompts: torch.Tensor, zeros_only: bool = False,
                  batch_sizes: Sequence[int] = (1, 4), new_tokens: int = 32, repeats: int = 3,
                  policy: SparsePolicy | None = None, model_name: str = "in-memory", mode: str = "") -> SpeedReport:
    """Dense versus sparse decode speed and module latency at each batch size, on the sparse modules of
    ``thresholds``' kind (the first ``batch`` rows of ``prompts``). ``policy``: their fallback (None: their
    defaults)."""
    if new_tokens < 3 or repeats < 1:
        raise ConfigError(f"need new_tokens >= 3 and repeats >= 1, got {new_tokens}, {repeats}")
    if any(b < 1 for b in batch_sizes) or max(batch_sizes) > prompts.shape[0]:
        raise ConfigError(f"batch sizes {list(batch_sizes)} need >= 1 and at most {prompts.shape[0]} prompts")
    path = speed_path(thresholds, zeros_only)
    policy = resolve_policy(policy, path.modules)  # the defaults filled in, as the report writes it
    mode = mode or ("zeros-only" if zeros_only else describe(thresholds))
    handle = path.swap_in(model, thresholds, zeros_only, policy)
    try:
        report = SpeedReport(model_name, mode, torch.get_num_threads(), prompts.shape[1], new_tokens, repeats,
                             policy, row_type=path.row_type, **path.layout(handle))
        greedy_decode(model, prompts[:1], 3)  # warm-up (builds the kernels, touches the column-major copies)
        for batch in batch_sizes:
            report.rows.append(_decode_row(handle, path, prompts[:batch], new_tokens, repeats))
    finally:
        handle.restore()
    return report


__all__ = ["FFNSpeedRow", "InputSpeedRow", "SpeedPath", "SpeedReport", "compare_speed", "describe",
           "greedy_decode", "other_weights", "speed_path"]
