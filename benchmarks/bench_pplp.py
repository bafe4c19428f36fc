"""PPL-p% fast path versus the slow reference of the published procedure, on SmolLM2-135M.

    .venv/bin/python benchmarks/bench_pplp.py [--tokens 512] [--p 1] [--tol 1e-3] [--slices 6] [--clock cpu]

Prints, from one run: wall time of each and their ratio, forward passes of each, the fast path's cost in
dense-forward equivalents (its wall time / a plain forward's, measured in the same run), and, at the CETT the
fast path reports, the activation ratio of the reference procedure against the fast path's.

The reference solves each layer's threshold by bisection over the published 65,536-point grid and then 14
more bisection steps inside the final grid cell (30 matmul probes per layer and step instead of 16): on
SmolLM2 the published grid is coarser than the thresholds at small CETT (tests/reference.py explains), and the
tests check the fast path against this refined reference. ``--published-grid`` times the grid as published.

The fast path's cost is one statistics pass plus one sparse pass per CETT tried, and on 512 tokens the PPL
ratio is a noisy function of the CETT (it jumps by several times the 1e-3 tolerance between CETTs 1.5%
apart), so how many sparse passes a search needs depends on the data. ``--slices N`` also runs the fast path
on N other 512-token slices of the corpus and prints the speed-up each would have against the reference's
time measured here (the reference always takes its 20 passes). ``--clock cpu`` times everything with the
process's CPU time on one thread (as ``bench_stats_pass.py``): on cores other jobs share, wall-clock ratios
stretch with whatever else runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import english, smollm2

import reference as R
from sparsinglaw.measure import MeasureConfig, measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--p", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--skip-reference", action="store_true", help="only the fast path (minutes faster)")
    parser.add_argument("--slices", type=int, default=0, help="also time the fast path on this many other slices")
    parser.add_argument("--published-grid", action="store_true",
                        help="reference thresholds on the published 65,536-point grid only (16 probes per layer "
                             "and step), without the 14 refining probes inside the final cell that make it "
                             "accurate on SmolLM2 (tests/reference.py, layer_threshold)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    model, tokenizer = smollm2(threads=1 if args.clock == "cpu" else 2)
    data = english(tokenizer, args.tokens)
    forward = forward_seconds(model, data, clock)
    start = clock()
    fast = measure(model, data, MeasureConfig(metric="pplp", p=args.p, tolerance=args.tol, batch_size=4))
    fast_s = clock() - start
    print(f"plain forward over {data.n_tokens} tokens: {forward:.2f} s")
    print(f"fast: {fast_s:.1f} s, {fast.forward_passes} passes, {fast_s / forward:.1f} dense-forward equivalents, "
          f"CETT {fast.setting['cett']:.4f}, PPL ratio {fast.ppl_ratio:.5f}, activation ratio {fast.activation_ratio:.4f}")
    at_same = R.at_cett(model, data.input_ids, fast.setting["cett"])
    print(f"reference at the same CETT: activation ratio {at_same['activation_ratio']:.4f} "
          f"(difference {abs(at_same['activation_ratio'] - fast.activation_ratio):.4f}, target <= 0.005)")
    if args.skip_reference:
        if args.slices:  # the fast path's cost alone, in dense-forward equivalents
            other_slices(model, tokenizer, args, None, forward, first=fast_s / forward, clock=clock)
        return
    start = clock()
    ref = R.ppl_p(model, data.input_ids, p=args.p, tol=args.tol, refine=not args.published_grid)
    ref_s = clock() - start
    grid = "published grid" if args.published_grid else "refined grid"
    print(f"reference ({grid}): {ref_s:.1f} s, {ref['forward_passes']} passes, CETT {ref['cett']:.4f}, "
          f"PPL ratio {ref['ppl_ratio']:.5f}, activation ratio {ref['activation_ratio']:.4f}")
    print(f"speed-up {ref_s / fast_s:.1f}x (target >= 25x); fast-path cost {fast_s / forward:.1f} dense-forward "
          f"equivalents (target <= 8)")
    if args.slices:
        other_slices(model, tokenizer, args, ref_s, forward, first=ref_s / fast_s, clock=clock)


def forward_seconds(model, data, clock, batch_size: int = 4, repeats: int = 3) -> float:
    """Median time of one hook-free forward over ``data`` by ``clock``, after an untimed warm-up (the first
    passes after loading GGUF weights ran 2-3x slower)."""
    times = []
    for _ in range(repeats + 1):
        start = clock()
        with torch.no_grad():
            for _, ids in data.batches(batch_size):
                model(input_ids=ids, use_cache=False)
        times.append(clock() - start)
    return sorted(times[1:])[repeats // 2]


def other_slices(model, tokenizer, args, reference_s: float, forward_s: float, first: float, clock) -> None:
    from sparsinglaw.data import build_eval_data, builtin_documents

    documents = builtin_documents()
    speedups = [first]  # speed-ups against the reference, or without one, dense-forward equivalents
    for k in range(1, args.slices + 1):
        data = build_eval_data(tokenizer, documents[k * len(documents) // (args.slices + 1):], seq_len=128,
                               max_tokens=args.tokens)
        start = clock()
        fast = measure(model, data, MeasureConfig(metric="pplp", p=args.p, tolerance=args.tol, batch_size=4))
        seconds = clock() - start
        speedups.append(seconds / forward_s if reference_s is None else reference_s / seconds)
        versus = "" if reference_s is None else f", speed-up vs the reference {speedups[-1]:.1f}x"
        print(f"slice {k}: {seconds:.1f} s, {fast.forward_passes} passes ({fast.solution['sparse_passes']} sparse), {seconds / forward_s:.1f} dense-forward "
              f"equivalents, PPL ratio {fast.ppl_ratio:.5f}, activation ratio {fast.activation_ratio:.4f}{versus}")
    what = "dense-forward equivalents" if reference_s is None else "speed-up"
    print(f"{what} over {len(speedups)} slices (the first above): median {statistics.median(speedups):.1f}, "
          f"range {min(speedups):.1f}-{max(speedups):.1f}")


if __name__ == "__main__":
    main()
