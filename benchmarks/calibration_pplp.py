"""Is the PPL-p% interval honest? Coverage of the pool's answer by the intervals of small random slices.

    .venv/bin/python benchmarks/calibration_pplp.py [--pool-tokens 8192] [--slices 16] [--slice-sequences 8]
        [--seq-len 64] [--solution trend] [--shape sequences|one] [--json out.json] [--clock cpu]

A pool of real English text (the built-in corpus) is cut into sequences of --seq-len tokens; PPL-p% is solved
on the whole pool (its answer: CETT and activation ratio), then on --slices random draws of --slice-sequences
sequences each (512 tokens by default). Prints, per slice, the answer, its 90% interval, whether the interval
holds the pool's answer, sparse passes and dense-forward equivalents (wall time / a plain forward of the same
tokens, measured in this run); then the coverage (goal: at least 80%) and the median cost. ``--clock cpu``
times with the process's CPU time on one thread, for cores other jobs share. ``--shape one``: each slice is
--slice-sequences *consecutive* pool sequences joined into one long sequence (one document), so the interval
rests on blocks of tokens alone (``metrics.blocks``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from bench_pplp import forward_seconds
from common import english, smollm2

from sparsinglaw.data.batches import EvalData
from sparsinglaw.measure import MeasureConfig, measure


def solve(model, data, args, start: float = 0.05):
    config = MeasureConfig(metric="pplp", p=args.p, tolerance=args.tol, batch_size=8, solution=args.solution,
                           start_cett=start)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    began = clock()
    result = measure(model, data, config)
    return result, clock() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool-tokens", type=int, default=8192)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--slice-sequences", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--p", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--solution", default="trend", choices=["trend", "lowest-crossing"])
    parser.add_argument("--shape", default="sequences", choices=["sequences", "one"],
                        help="slices of random pool sequences, or consecutive ones joined into one sequence")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    model, tokenizer = smollm2(threads=1 if args.clock == "cpu" else 2)
    pool = english(tokenizer, args.pool_tokens, seq_len=args.seq_len)
    whole, whole_s = solve(model, pool, args)
    answer_c, answer_a = whole.setting["cett"], whole.activation_ratio
    print(f"pool: {pool.n_tokens} tokens ({pool.n_sequences} x {pool.seq_len}), answer CETT {answer_c:.4f}, "
          f"activation ratio {answer_a:.4f}, interval {whole.interval and whole.interval['activation_ratio']}, "
          f"{len(whole.search)} sparse passes, {whole_s:.0f} s")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(args.slices):
        data = draw_slice(pool, args, rng, k)
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        forward = forward_seconds(model, data, clock, batch_size=8, repeats=1)
        result, seconds = solve(model, data, args)
        iv = result.interval or {"activation_ratio": [np.nan, np.nan], "cett": [np.nan, np.nan]}
        row = {"slice": k, "cett": result.setting["cett"], "activation_ratio": result.activation_ratio,
               "interval_activation": iv["activation_ratio"], "interval_cett": iv["cett"],
               "holds_activation": bool(iv["activation_ratio"][0] <= answer_a <= iv["activation_ratio"][1]),
               "holds_cett": bool(iv["cett"][0] <= answer_c <= iv["cett"][1]),
               "sparse_passes": len(result.search), "forward_equivalents": seconds / forward, "seconds": seconds}
        rows.append(row)
        lo, hi = row["interval_activation"]
        print(f"slice {k:2d}: activation {row['activation_ratio']:.4f} [{lo:.4f}, {hi:.4f}] "
              f"{'holds' if row['holds_activation'] else 'MISSES'} the pool's; CETT {row['cett']:.4f} "
              f"[{row['interval_cett'][0]:.4f}, {row['interval_cett'][1]:.4f}] "
              f"{'holds' if row['holds_cett'] else 'MISSES'}; {row['sparse_passes']} sparse passes, "
              f"{row['forward_equivalents']:.1f} dense-forward equivalents", flush=True)
    summarize(rows, args, {"cett": answer_c, "activation_ratio": answer_a, "sparse_passes": len(whole.search),
                           "interval": whole.interval.to_dict() if whole.interval else None})


def draw_slice(pool: EvalData, args, rng, k: int) -> EvalData:
    """Random pool sequences, or (``--shape one``) consecutive ones joined into one sequence."""
    if args.shape == "one":
        first = int(rng.integers(0, pool.n_sequences - args.slice_sequences + 1))
        ids = pool.input_ids[first : first + args.slice_sequences].reshape(1, -1)
        return EvalData(input_ids=ids, source=f"pool slice {k} (one sequence)")
    pick = np.sort(rng.choice(pool.n_sequences, size=args.slice_sequences, replace=False))
    return EvalData(input_ids=pool.input_ids[pick], source=f"pool slice {k}")


def summarize(rows: list[dict], args, pool: dict) -> None:
    n = len(rows)
    holds_a = sum(r["holds_activation"] for r in rows)
    holds_c = sum(r["holds_cett"] for r in rows)
    widths = [r["interval_activation"][1] - r["interval_activation"][0] for r in rows]
    answers = [r["activation_ratio"] for r in rows]
    passes = [r["sparse_passes"] for r in rows]
    costs = [r["forward_equivalents"] for r in rows]
    print(f"coverage of the pool's answer by the {n} slices' 90% intervals: activation ratio {holds_a}/{n} "
          f"({holds_a / n:.0%}), CETT {holds_c}/{n} ({holds_c / n:.0%}) (goal >= 80%)")
    print(f"slice answers {min(answers):.3f}-{max(answers):.3f} (sd {statistics.stdev(answers):.3f}); interval "
          f"width median {statistics.median(widths):.3f}; sparse passes median {statistics.median(passes)}, max "
          f"{max(passes)}; dense-forward equivalents median {statistics.median(costs):.1f}, max {max(costs):.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "pool": pool, "slices": rows}, f, indent=1)


if __name__ == "__main__":
    main()
