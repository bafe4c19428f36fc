"""Sparse FFN layer versus dense at the paper's 0.1B shape: speedup, and the crossovers.

    .venv/bin/python benchmarks/bench_sparse_ffn.py [--threads 2] [--tokens 64] [--repeats 7]

Layer: d = 768, d_f = 1920, gated ReLU, float32. Real activation patterns: SmolLM2-135M's FFN inputs
``x`` (576-dim, real English text from the built-in corpus) and its real gate rows ``W_gate`` of two
consecutive middle layers (1536 + 384 = 1920 neurons) are embedded isometrically into 768 dimensions with a
fixed random matrix ``P`` with orthonormal columns (``x' = P x``, ``W_gate' = W_gate P^T``, so
``W_gate' x' = W_gate x`` exactly). A gate bias ``-theta`` with ``theta`` the (1 - A) quantile of those real
gate pre-activations makes ReLU fire on a fraction A of (token, neuron) pairs: per-token activation ratios
and per-neuron frequencies are those of a real model's gate, only the operating point is set. Up and down
rows are SmolLM2's, embedded the same way. Without the SmolLM2 GGUF (./dev setup) it falls back to random
weights and Gaussian inputs, and says so.

Weights are cold, as in decoding: the layer is copied ``--layers`` times (8 copies, 190 MB, do not fit the
32 MB L3 cache here) and successive calls go through the copies like a forward goes through a model's
layers; ``--layers 1`` measures a single cache-resident layer instead. Three paths: dense (the original
module), sparse with the compiled kernel (``sparsinglaw.sparse.native``, the default) and sparse in plain
PyTorch (``SparsePolicy(native=False)``, the portable/GPU path).

Timing: each case runs the three on the same inputs, alternating call by call; ratios are of medians of
per-call times (the machine is shared: absolute times are noisy, preempted calls are outliers).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from torch import nn

from sparsinglaw.sparse import SparseGatedFFN, SparsePolicy
from sparsinglaw.sparse.native import kernels as native_kernels

D, DF = 768, 1920
PARTS = {"gate": "gate_proj", "up": "up_proj", "down": "down_proj", "act": "act_fn"}


class GatedReLU(nn.Module):
    """A Llama-layout gated FFN with a gate bias (the knob that sets the activation ratio)."""

    def __init__(self, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor):
        super().__init__()
        self.gate_proj = nn.Linear(D, DF, bias=True)
        self.up_proj = nn.Linear(D, DF, bias=False)
        self.down_proj = nn.Linear(DF, D, bias=False)
        self.act_fn = nn.ReLU()
        with torch.no_grad():
            self.gate_proj.weight.copy_(gate)
            self.gate_proj.bias.zero_()
            self.up_proj.weight.copy_(up)
            self.down_proj.weight.copy_(down)

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def real_parts(tokens: int):
    """(inputs (tokens, 768), W_gate, W_up, W_down, source) from SmolLM2 on real text, embedded in 768-d."""
    from common import GGUF, english, smollm2

    if not GGUF.is_file():
        return None
    model, tokenizer = smollm2(threads=torch.get_num_threads())
    data = english(tokenizer, tokens, seq_len=tokens)
    layers = model.model.layers
    mid = len(layers) // 2
    seen = {}
    handle = layers[mid].mlp.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0].detach()))
    with torch.no_grad():
        model(input_ids=data.input_ids[:1])
    handle.remove()
    x = seen["x"].reshape(-1, seen["x"].shape[-1]).float()
    a, b = layers[mid].mlp, layers[mid + 1].mlp
    extra = DF - a.gate_proj.out_features
    gate = torch.cat([a.gate_proj.weight, b.gate_proj.weight[:extra]]).detach()
    up = torch.cat([a.up_proj.weight, b.up_proj.weight[:extra]]).detach()
    down = torch.cat([a.down_proj.weight, b.down_proj.weight[:, :extra]], dim=1).detach()
    p, _ = torch.linalg.qr(torch.randn(D, x.shape[1], generator=torch.Generator().manual_seed(0)))
    return x @ p.T, gate @ p.T, up @ p.T, p @ down, f"SmolLM2-135M layers {mid}-{mid + 1}, real English"


def random_parts(tokens: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, D, generator=g)
    gate, up = (torch.randn(DF, D, generator=g) / D**0.5 for _ in range(2))
    return x, gate, up, torch.randn(D, DF, generator=g) / DF**0.5, "random weights, Gaussian inputs (no SmolLM2)"


def set_ratio(ffn: GatedReLU, x: torch.Tensor, ratio: float) -> None:
    """Gate bias -theta so that ReLU fires on ``ratio`` of the (token, neuron) pairs of ``x``."""
    with torch.no_grad():
        ffn.gate_proj.bias.zero_()
        g = ffn.gate_proj(x).flatten()
        ffn.gate_proj.bias.fill_(-float(torch.quantile(g, 1 - ratio)))


def compare(paths: dict[str, list], batches, repeats: int) -> dict[str, float]:
    """Median seconds per call of each path (a list of per-layer-copy callables), the paths alternating
    call by call on the same input and cycling through the layer copies (a preempted call is an outlier
    the median ignores)."""
    times = {name: [] for name in paths}
    with torch.inference_mode():
        for fns in paths.values():
            for fn in fns:
                fn(batches[0])  # warm-up (workspace, caches, kernel build)
        for rep in range(repeats):
            order = list(paths.items()) if rep % 2 == 0 else list(reversed(paths.items()))
            for xb in batches:
                for copy in range(len(next(iter(paths.values())))):
                    for name, fns in order:
                        start = time.perf_counter()
                        fns[copy](xb)
                        times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def case(copies: list[GatedReLU], x, ratio: float, batch: int, repeats: int):
    for ffn in copies:
        set_ratio(ffn, x, ratio)
    policy = SparsePolicy(max_tokens=10_000, max_share=1.0, fused_max_share=1.0)  # always sparse: crossovers
    native = [SparseGatedFFN(ffn, PARTS, 0.0, policy) for ffn in copies]
    plain = [SparseGatedFFN(ffn, PARTS, 0.0, replace(policy, native=False)) for ffn in copies]
    batches = [x[i : i + batch] for i in range(0, x.shape[0] - batch + 1, batch)]
    times = compare({"dense": copies, "native": native, "torch": plain}, batches, repeats)
    counts = native[0].counters
    return times, counts.kept_pairs / counts.offered_pairs, counts.computed / counts.offered_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", type=int, default=8, help="layer copies cycled through (1: cache-resident)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = real_parts(args.tokens) or random_parts(args.tokens)
    x, source = parts[0], parts[4]
    copies = [GatedReLU(*parts[1:4]).eval() for _ in range(args.layers)]
    print(f"FFN d={D} d_f={DF} gated ReLU, float32, {args.threads} threads, {args.layers} layer copies; "
          f"patterns: {source}; kernel: {'compiled' if native_kernels() else 'NOT AVAILABLE (torch path twice)'}")
    print(f"{'batch':>5} {'act.ratio':>9} {'computed':>8} {'dense us':>9} {'native us':>9} {'torch us':>9} "
          f"{'native':>7} {'torch':>7}")
    rows = [(1, r) for r in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)] + [(b, 0.1) for b in (2, 4, 8, 16, 32)]
    slower = []
    for batch, ratio in rows:
        times, active, computed = case(copies, x, ratio, batch, args.repeats)
        dense = times["dense"]
        print(f"{batch:>5} {active:>9.3f} {computed:>8.3f} {dense * 1e6:>9.0f} {times['native'] * 1e6:>9.0f} "
              f"{times['torch'] * 1e6:>9.0f} {dense / times['native']:>6.2f}x {dense / times['torch']:>6.2f}x")
        if times["native"] >= dense:
            slower.append((batch, computed))
    first = {b: c for b, c in reversed(slower)}
    print(f"crossover (compiled kernel) at batch 1: sparse slower from computed ratio {first.get(1, float('nan')):.2f} "
          f"(fallback default {SparseGatedFFN.DEFAULT_POLICY.max_share}); at 10% activation sparse slower from batch "
          f"{min((b for b, _ in slower if b > 1), default='> 32')} "
          f"(fallback above {SparseGatedFFN.DEFAULT_POLICY.max_tokens} tokens)")
    print("speedup = dense time / sparse time per call (medians); computed = share of up/down rows the sparse "
          "path reads (the union of active neurons over the batch)")


if __name__ == "__main__":
    main()
