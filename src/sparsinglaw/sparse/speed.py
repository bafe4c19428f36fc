"""Decode tokens/s and FFN latency, dense versus sparse, measured side by side.

``compare_speed(model, thresholds)`` swaps in the sparse FFNs once and, per batch size, alternates greedy
decodes with the original dense FFNs (``handle.set_enabled(False)``: the plain model, the speed baseline)
and with the sparse FFNs (the thresholded model); ratios are of medians over the repetitions, so a shared,
noisy machine slows both alike. Only the decode steps are timed (the prefill has many tokens and takes the
dense fallback anyway). FFN latency replays the FFN inputs of real decode steps through every layer's
original module and its sparse module, alternating call by call, and reports the sum over layers of the
median per-call times (one decode step).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from sparsinglaw.errors import ConfigError
from sparsinglaw.sparse.convert import SparseHandle, sparse_ffn
from sparsinglaw.sparse.ffn import SparsePolicy
from sparsinglaw.tables import aligned_table


@dataclass
class SpeedRow:
    batch: int
    dense_tokens_per_s: float  # generated tokens (all sequences) per second of decode
    sparse_tokens_per_s: float
    dense_ffn_ms: float  # all FFNs of one decode step
    sparse_ffn_ms: float
    activation_ratio: float  # kept (token, neuron) pairs in the sparse decode
    computed_ratio: float  # share of up/down neuron projections computed (union over the batch; 1 = dense)
    sparse_share: float  # share of decode FFN calls that took the sparse path (the rest fell back)

    @property
    def decode_speedup(self) -> float:
        return self.sparse_tokens_per_s / self.dense_tokens_per_s

    @property
    def ffn_speedup(self) -> float:
        return self.dense_ffn_ms / self.sparse_ffn_ms


@dataclass
class SpeedReport:
    model: str
    mode: str  # "zeros-only" or the thresholds' source
    threads: int
    prompt_len: int
    new_tokens: int
    repeats: int
    policy: dict
    rows: list[SpeedRow] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """A line per batch size at which no FFN call ran sparsely: its two timings are both dense."""
        return dense_only_warnings(self.rows, "FFN calls", lambda r: f"{r.activation_ratio:.0%} of neurons "
                                   f"active, fallback above max_ratio={self.policy.get('max_ratio')}")

    def table(self) -> str:
        head = (f"{self.model}: {self.mode}; {self.threads} threads, prompt {self.prompt_len}, "
                f"{self.new_tokens} new tokens, medians of {self.repeats}; fallback "
                + ", ".join(f"{k}={v}" for k, v in self.policy.items()))
        header = ["batch", "dense tok/s", "sparse tok/s", "speedup", "dense FFN ms", "sparse FFN ms", "FFN x",
                  "act.ratio", "computed", "sparse"]
        body = [[r.batch, f"{r.dense_tokens_per_s:.1f}", f"{r.sparse_tokens_per_s:.1f}",
                 speedup_text(r, r.decode_speedup), f"{r.dense_ffn_ms:.3f}", f"{r.sparse_ffn_ms:.3f}",
                 speedup_text(r, r.ffn_speedup), f"{r.activation_ratio:.3f}", f"{r.computed_ratio:.3f}",
                 f"{r.sparse_share:.2f}"] for r in self.rows]
        lines = [head, aligned_table(header, body, left=0), timing_note(self.repeats)]
        lines += dense_only_note(self.rows)
        lines.append("speedup = sparse / dense tokens/s; act.ratio = kept neurons per token; computed = neurons "
                     "whose up/down rows were computed (union over the batch); sparse = share of FFN calls on the "
                     "sparse path (else dense fallback)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, obj in zip(data["rows"], self.rows):
            ran = obj.sparse_share > 0
            row.update(ran_sparsely=ran, decode_speedup=obj.decode_speedup if ran else None,
                       ffn_speedup=obj.ffn_speedup if ran else None)
        data["warnings"] = self.warnings()
        return data


def speedup_text(row, value: float) -> str:
    """A speedup cell: ``1.23x``, or ``dense`` where no call ran sparsely (dense timed against dense)."""
    return f"{value:.2f}x" if row.sparse_share > 0 else "dense"


def timing_note(repeats: int) -> str:
    """Why the timings have no interval."""
    return f"timings and speedups: medians of {repeats} interleaved repeats (no interval)"


def dense_only_note(rows) -> list[str]:
    """The table's footnote for its ``dense`` speedup cells, when it has any."""
    if all(r.sparse_share > 0 for r in rows):
        return []
    return ["dense (speedup column) = nothing ran sparsely at that batch size: every call fell back to dense, so "
            "there is no speedup to report"]


def dense_only_warnings(rows, calls: str, why: Callable) -> list[str]:
    """A line per row (batch size) whose sparse run took the dense fallback on every call: its "sparse"
    timing is a dense one, so the ratio of the two is noise, not a speedup (``why(row)`` says why)."""
    return [f"batch {r.batch}: nothing ran sparsely (every one of the {calls} fell back to dense: {why(r)}); "
            "the two timings are both dense, so there is no speedup to report" for r in rows if r.sparse_share <= 0]


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


def _decode_row(handle: SparseHandle, prompt: torch.Tensor, new_tokens: int, repeats: int) -> SpeedRow:
    batch = prompt.shape[0]
    dense, sparse = interleaved_decode(handle, prompt, new_tokens, repeats, handle.reset_stats)
    row_stats = (handle.activation_ratio(), handle.computed_ratio(), handle.sparse_share())
    inputs = decode_inputs(handle.model, handle.modules, prompt, steps=min(8, new_tokens - 1))
    dense_ffn, sparse_ffn = paired_latency([(m.original, m) for m in handle.modules], inputs, repeats)
    generated = batch * (new_tokens - 1)
    return SpeedRow(batch, generated / dense, generated / sparse, dense_ffn * 1e3, sparse_ffn * 1e3, *row_stats)


def compare_speed(model, thresholds=None, *, prompts: torch.Tensor, zeros_only: bool = False,
                  batch_sizes: Sequence[int] = (1, 4), new_tokens: int = 32, repeats: int = 3,
                  policy: SparsePolicy | None = None, model_name: str = "in-memory", mode: str = "") -> SpeedReport:
    """Dense versus sparse decode speed and FFN latency at each batch size (prompts: ``(N, prompt_len)``,
    the first ``batch`` rows are used). ``thresholds``: a ``Thresholds``, per-FFN values, or None with
    ``zeros_only`` (exact ReLU zeros)."""
    if new_tokens < 3 or repeats < 1:
        raise ConfigError(f"need new_tokens >= 3 and repeats >= 1, got {new_tokens}, {repeats}")
    if thresholds is None and not zeros_only:
        raise ConfigError("pass thresholds (--thresholds RESULT.json) or zeros_only (--zeros-only, ReLU models)")
    if any(b < 1 for b in batch_sizes) or max(batch_sizes) > prompts.shape[0]:
        raise ConfigError(f"batch sizes {list(batch_sizes)} need >= 1 and at most {prompts.shape[0]} prompts")
    policy = policy or SparsePolicy()
    report = SpeedReport(model_name, mode or ("zeros-only" if zeros_only else "thresholds"),
                         torch.get_num_threads(), prompts.shape[1], new_tokens, repeats, asdict(policy))
    with sparse_ffn(model, thresholds, zeros_only=zeros_only, policy=policy) as handle:
        greedy_decode(model, prompts[:1], 3)  # warm-up
        for batch in batch_sizes:
            report.rows.append(_decode_row(handle, prompts[:batch], new_tokens, repeats))
    return report
