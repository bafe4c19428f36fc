"""PPL-p% on big evaluations: the subset search (``metrics.pplp_subset``) against every pass on all tokens.

    .venv/bin/python benchmarks/bench_pplp_big.py [--sizes 16384 65536] [--seq-len 256] [--p 1] [--tol 1e-3]

For each size, on the built-in corpus packed into sequences of --seq-len, from one run: a plain forward of
the same tokens (the unit), then ``measure --metric pplp`` as it runs by default (sparse passes on a subset of
the sequences, one pass on all of them at the answer) and with the subset search switched off (every pass on
all tokens, the search of smaller evaluations). Each line: sparse passes, sparse-pass equivalents (tokens
evaluated in sparse passes / the evaluation's tokens), wall time in dense-forward equivalents (wall / the
plain forward), answer, PPL ratio at it (measured on all tokens), activation ratio, converged. The ratio of
the two dense-forward-equivalent figures is what the subset search saves; both are measured in the same run,
so the machine's load stretches them alike.
"""

from __future__ import annotations

import argparse
import logging
import time

from bench_pplp import forward_seconds
from common import smollm2

from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.metrics import pplp_subset


def run_once(model, data, args, subsets: bool) -> tuple[object, float]:
    """One PPL-p% measurement (wall seconds), with or without the subset search."""
    saved = pplp_subset.BIG_TOKENS
    pplp_subset.BIG_TOKENS = saved if subsets else 10**15  # off: no evaluation is big enough
    try:
        start = time.perf_counter()
        result = measure(model, data, MeasureConfig(metric="pplp", p=args.p, tolerance=args.tol,
                                                    batch_size=args.batch_size, seq_len=args.seq_len))
        return result, time.perf_counter() - start
    finally:
        pplp_subset.BIG_TOKENS = saved


def line(size: int, mode: str, result, seconds: float, forward: float) -> str:
    sol = result.solution
    subset = sol.get("subset") or {}
    equivalents = subset.get("sparse_pass_equivalents", sol["sparse_passes"])
    rows = f"{subset['sequences']}/{subset['of']}" if subset else "all"
    cett = "none" if sol.get("no_answer") else f"{result.setting['cett']:.4f}"
    return (f"{size:>6} {mode:>7} {rows:>9} {sol['sparse_passes']:>6} {equivalents:>8.2f} {seconds / forward:>12.2f} "
            f"{cett:>8} {result.ppl_ratio:>9.4f} {result.activation_ratio:>9.4f} {str(sol['converged']):>9}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--p", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-all-tokens", action="store_true", help="only the subset search")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the searches' pass-by-pass lines
    model, tokenizer = smollm2(threads=args.threads)
    print(f"{'tokens':>6} {'search':>7} {'sequences':>9} {'sparse':>6} {'pass-eq':>8} {'dense-fwd eq':>12} "
          f"{'CETT':>8} {'PPL ratio':>9} {'act.ratio':>9} {'converged':>9}", flush=True)
    for size in args.sizes:
        data = build_eval_data(tokenizer, builtin_documents(), seq_len=args.seq_len, max_tokens=size)
        forward = forward_seconds(model, data, time.perf_counter, batch_size=args.batch_size, repeats=1)
        costs = {}
        for mode in ("subset",) if args.skip_all_tokens else ("subset", "all"):
            result, seconds = run_once(model, data, args, subsets=mode == "subset")
            costs[mode] = seconds / forward
            print(line(data.n_tokens, mode, result, seconds, forward), flush=True)
            for step in (result.solution.get("subset") or {}).get("steps", []):
                print(f"{'':>8}start from {step['sequences']} sequences: {step['passes']} passes, CETT "
                      f"{step['cett']:.4f}, slope {step['slope']:.2f}, sampling error {step['sampling_se']:.2g}; "
                      "passes on all: " + ", ".join(f"{q['cett']:.4f} -> {q['ppl_ratio']:.4f}" for q in result.search
                                                    if q["sequences"] == data.n_sequences), flush=True)
        if len(costs) == 2:
            print(f"{data.n_tokens} tokens: plain forward {forward:.1f} s; subset search costs "
                  f"{costs['subset'] / costs['all']:.2f}x the all-tokens search", flush=True)


if __name__ == "__main__":
    main()
