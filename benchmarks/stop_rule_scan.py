"""Does the trend's stop rule measure the right noise? Dense CETT scans of fixed 512-token slices of SmolLM2.

    .venv/bin/python benchmarks/stop_rule_scan.py --slice bench --from 0.026 --to 0.044 --points 28 --out scan.npz
    .venv/bin/python benchmarks/stop_rule_scan.py --slice 0 --from 0.026 --to 0.05 --points 30 --out scan0.npz
    .venv/bin/python benchmarks/stop_rule_scan.py --replay scan.npz scan0.npz

A scan runs one sparse pass at each of --points CETTs (geometric, about 2% apart) on one slice and keeps
every pass's per-sequence losses (--slice bench: the 4 x 128 tokens of bench_pplp.py; a number k: the k-th
random draw of 8 x 64 tokens from calibration_pplp.py's 8,192-token pool). --replay then prints, per scan:

- the scatter of the same tokens' ratio around their own trend: rank 1 (``rank1_noise``) over pairs of
  passes 1, 3, 5 and 8 grid steps apart, and the own-shape estimate (``own_shape_noise``) over 4 consecutive
  passes. Close pairs measure the scatter that more passes average out; wide pairs add the sequences'
  different trends (which sequences were drawn: sampling error, which no number of passes reduces).
- the trend search replayed from 15 starts (0.02-0.1) with each pass read off the nearest unused scanned
  CETT: sparse passes, and the error of its answer against the trend fitted to the whole scan (in PPL-ratio
  units, the tolerance's), which is what the stop rule's standard error should bound.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sparsinglaw.metrics import pplp_trend as PT


def scan(args) -> None:
    from common import english, smollm2

    from sparsinglaw.data.batches import EvalData
    from sparsinglaw.measure import MeasureConfig, Measurement

    model, tokenizer = smollm2(threads=1)
    if args.slice == "bench":
        data = english(tokenizer, 512)
    elif args.slice.startswith("bench"):  # bench_pplp.py --slices 7's k-th other slice (k = 1..7)
        from sparsinglaw.data import build_eval_data, builtin_documents

        documents, k = builtin_documents(), int(args.slice[len("bench"):])
        data = build_eval_data(tokenizer, documents[k * len(documents) // 8:], seq_len=128, max_tokens=512)
    else:  # the same draws as calibration_pplp.py
        pool, rng = english(tokenizer, 8192, seq_len=64), np.random.default_rng(0)
        for _ in range(int(args.slice) + 1):
            pick = np.sort(rng.choice(pool.n_sequences, size=8, replace=False))
        data = EvalData(input_ids=pool.input_ids[pick], source=f"pool slice {args.slice}")
    measurement = Measurement(model, data, MeasureConfig(metric="pplp", batch_size=8))
    cetts, nll = np.geomspace(args.lo, args.hi, args.points), []
    for c in cetts:
        evaluation = measurement.at("cett", float(c))
        nll.append(evaluation.losses.nll.numpy())
        print(f"CETT {c:.5f}: PPL ratio {measurement.ppl_ratio(evaluation):.5f}", flush=True)
    dense = measurement.dense_losses
    np.savez(args.out, cetts=cetts, nll=np.array(nll), dense=dense.nll.numpy(), tokens=dense.tokens.numpy())


def replay_search(cetts, nll, dense, tokens, start: float, max_passes: int = 12):
    """The trend search with each pass read off the nearest scanned CETT not used yet: (fit, passes)."""
    x = np.log(cetts)
    search = PT.TrendSearch(dense, tokens, 1.0, 1e-3, max_passes, start)
    used, c = set(), start
    while True:
        k = next(i for i in np.argsort(np.abs(x - math.log(c))) if i not in used)
        used.add(k)
        search.cetts.append(float(cetts[k]))
        search.sparse_nll.append(nll[k])
        fit = search.fit()
        if search._stop_reason(fit) is not None or len(search.cetts) == max_passes:
            return fit, len(search.cetts)
        c = PT._propose(fit, search.cetts, search.log_ratios())


def replay(path: str) -> None:
    d = np.load(path)
    cetts, nll, dense, tokens = d["cetts"], d["nll"], d["dense"], d["tokens"].astype(np.float64)
    log_r = (nll - dense).sum(axis=1) / tokens.sum()
    rising = [i for i in range(len(cetts)) if log_r[i] > 0.002]
    parts = []
    for gap in (1, 3, 5, 8):
        pairs = [PT.rank1_noise(tokens, dense, [nll[i], nll[i + gap]], 1.01) for i in rising if i + gap < len(cetts)]
        parts.append(f"{math.log(cetts[gap] / cetts[0]):.2f}: {np.median(pairs):.5f}")
    runs = [PT.own_shape_noise(tokens, dense, list(nll[i : i + 4]), list(cetts[i : i + 4]), 1.01)
            for i in rising if i + 4 <= len(cetts)]
    print(f"{path}: rank-1 scatter by pair spacing in log c {', '.join(parts)}; own shapes over 4 consecutive "
          f"passes {np.median(runs):.5f}")
    whole = PT.TrendSearch(dense, tokens, 1.0, 1e-3, len(cetts), 0.05)
    whole.cetts, whole.sparse_nll = [float(c) for c in cetts], list(nll)
    truth = whole.fit()
    per_log_c = 1.01 * math.log(1.01) * truth.slope  # d ratio / d log c of the trend at its crossing
    runs = [replay_search(cetts, nll, dense, tokens, float(s)) for s in np.geomspace(0.02, 0.1, 15)]
    passes = np.array([k for _, k in runs])
    errors = np.array([fit.log_cett - truth.log_cett for fit, _ in runs]) * per_log_c
    print(f"  whole-scan trend crosses at CETT {truth.cett:.4f}; replayed searches: sparse passes mean "
          f"{passes.mean():.2f}, median {np.median(passes):g}, max {passes.max()}; answer error in PPL-ratio units "
          f"rms {math.sqrt(np.mean(errors**2)):.5f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slice", default="bench")
    parser.add_argument("--from", dest="lo", type=float, default=0.026)
    parser.add_argument("--to", dest="hi", type=float, default=0.044)
    parser.add_argument("--points", type=int, default=28)
    parser.add_argument("--out", default="scan.npz")
    parser.add_argument("--replay", nargs="+", metavar="SCAN", help="replay saved scans instead of scanning")
    args = parser.parse_args()
    if args.replay:
        for path in args.replay:
            replay(path)
    else:
        scan(args)


if __name__ == "__main__":
    main()
