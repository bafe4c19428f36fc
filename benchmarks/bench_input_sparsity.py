"""Input sparsity of every projection on SmolLM2-135M: thresholds, bytes read, decode speed.

    .venv/bin/python benchmarks/bench_input_sparsity.py                      # SmolLM2, PPL-1%, batch 1
    .venv/bin/python benchmarks/bench_input_sparsity.py --tiny               # tiny random Llama (smoke test)

One run: ``measure_inputs`` solves PPL-p% for each method on ``--tokens`` tokens of built-in English text
(the CETT-way per-projection thresholds, TEAL uniform, TEAL greedy) and reports kept shares and weight
bytes per token; then batch-1 greedy decode of held-out text is timed, dense and with each method's
thresholds on the input-sparse CPU path (``sparse.input_sparse``), interleaved over ``--repeats`` rounds
(medians; ratios are of this run). Decode bytes per token are counted from the columns the sparse modules
actually read after the prefill. Last, a per-projection microbenchmark on real decode inputs of the middle
block. Float32 weights (4 bytes each), ``--threads`` threads for PyTorch (the kernel is single-threaded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import english, smollm2

from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.models.projections import find_projections, observe_outputs
from sparsinglaw.sparse.input_sparse import InputSparseLinear, sparsify_inputs
from sparsinglaw.sparse.speed import greedy_decode


def tiny():
    from helpers import random_eval_data, tiny_llama

    model = tiny_llama(layers=4, hidden=256, inter=640, vocab=512)
    return model, random_eval_data(n_sequences=8, seq_len=64, vocab=512), random_eval_data(1, 32, 512, seed=9).input_ids


def decode_bytes(handle, other_bytes: float, steps: int, bytes_per_weight: float) -> float:
    """Weight bytes read per decode step: columns the modules read (kept, or all when dense) x rows."""
    read = 0.0
    for m in handle.modules.values():
        columns = m.counters.kept_inputs + m.counters.dense_calls * m.in_features
        read += columns * m.out_features * bytes_per_weight
    return read / steps + other_bytes


def timed_decode(model, prompt, new_tokens, method=None, max_share=0.8, other_bytes=0.0, bytes_per_weight=4.0):
    """(tokens/s of the decode steps, generated ids, (bytes per step, kept share of the sparse calls, share
    of calls that fell back to dense) or None for the dense model). Counted after the prefill, before the
    modules are restored (``restore`` empties the handle)."""
    handle = None if method is None else sparsify_inputs(model, method, max_share=max_share)

    def reset():
        for m in handle.modules.values():
            m.counters.__init__()

    try:
        ids, seconds = greedy_decode(model, prompt, new_tokens, after_prefill=reset if handle else None)
        stats = None if handle is None else (decode_bytes(handle, other_bytes, new_tokens - 1, bytes_per_weight),
                                             handle.kept_share(), handle.dense_share())
        return (new_tokens - 1) / seconds, ids, stats
    finally:
        if handle is not None:
            handle.restore()


def microbenchmark(model, method, prompt, block: int, repeats: int = 200) -> list[dict]:
    """Per projection of ``block``: dense and input-sparse microseconds on real decode inputs."""
    projections = [p for p in find_projections(model) if p.block == block]
    inputs = {p.index: [] for p in projections}
    with observe_outputs(projections, lambda p, x, y: inputs[p.index].append(x.reshape(-1, x.shape[-1]).clone())):
        greedy_decode(model, prompt, 17)
    rows = {r.name: r for r in method.projections}
    out = []
    for p in projections:
        xs = [x for x in inputs[p.index] if x.shape[0] == 1][:16]
        row = rows[p.name]
        norms = p.down_column_norms() if method.method == "cett" else None
        sparse = InputSparseLinear(p.module, row.threshold, norms, max_share=1.0)
        with torch.inference_mode():
            times = {}
            for name, f in (("dense", p.module), ("sparse", sparse)):
                for x in xs:
                    f(x)
                start = time.perf_counter()
                for _ in range(repeats // len(xs)):
                    for x in xs:
                        f(x)
                times[name] = (time.perf_counter() - start) / (repeats // len(xs) * len(xs)) * 1e6
        kept = sparse.counters.kept_inputs / max(sparse.counters.sparse_calls, 1) / p.in_features
        out.append({"projection": p.kind, "shape": f"{p.out_features}x{p.in_features}", "kept": kept,
                    "dense_us": times["dense"], "sparse_us": times["sparse"], "speedup": times["dense"] / times["sparse"],
                    "bound": 1 / kept if kept > 0 else float("inf")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a tiny random Llama instead of SmolLM2 (smoke test)")
    ap.add_argument("--tokens", type=int, default=512, help="calibration tokens (PPL-p%% search)")
    ap.add_argument("--p", type=float, default=1.0)
    ap.add_argument("--methods", nargs="+", default=["cett", "teal-uniform", "teal-greedy"])
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-share", type=float, default=0.8, help="dense fallback above this kept share")
    ap.add_argument("--output", help="write every number as JSON here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.tiny:
        model, data, prompt = tiny()
        name = "tiny random Llama"
    else:
        model, tokenizer = smollm2(args.threads)
        data = english(tokenizer, args.tokens, seq_len=64)
        prompt = build_eval_data(tokenizer, builtin_documents()[-20:], seq_len=32, max_tokens=32).input_ids[:1]
        name = "SmolLM2-135M-Instruct"
    started = time.perf_counter()
    config = InputConfig(p=args.p, methods=tuple(args.methods), batch_size=8, greedy_step=0.05, greedy_sequences=4)
    result = measure_inputs(model, data, config, model_name=name)
    print(f"thresholds: {result.forward_passes} passes in {time.perf_counter() - started:.0f} s")
    print(result.table(), "\n")

    speeds: dict[str, list[float]] = {"dense": []}
    decode_stats: dict[str, tuple] = {}
    for _ in range(args.repeats):  # interleaved, so drifts of the shared machine hit every row alike
        tps, dense_ids, _ = timed_decode(model, prompt, args.new_tokens)
        speeds["dense"].append(tps)
        for m in result.methods:
            tps, ids, stats = timed_decode(model, prompt, args.new_tokens, m, args.max_share,
                                           result.other_bytes_per_token, result.bytes_per_weight)
            speeds.setdefault(m.method, []).append(tps)
            decode_stats[m.method] = (stats, float((ids == dense_ids).float().mean()))
    dense_tps = statistics.median(speeds["dense"])
    steps = args.new_tokens - 1
    rows = [{"method": "dense", "tokens_per_s": dense_tps, "ratio": 1.0, "mb_per_token": result.dense_bytes_per_token / 1e6,
             "bound": 1.0, "of_bound": 1.0}]
    for m in result.methods:
        (used, kept, dense_share), same = decode_stats[m.method]
        tps = statistics.median(speeds[m.method])
        bound = result.dense_bytes_per_token / used
        rows.append({"method": m.method, "tokens_per_s": tps, "ratio": tps / dense_tps, "mb_per_token": used / 1e6,
                     "bound": bound, "of_bound": tps / dense_tps / bound, "ppl_ratio": m.ppl_ratio,
                     "decode_kept_share": kept, "dense_fallback_share": dense_share, "same_tokens_as_dense": same})
    print(f"batch-1 decode, {steps} steps, {args.threads} thread(s), medians of {args.repeats} interleaved rounds")
    print("MB/tok: weight bytes read per decode step; bound: dense bytes over those; kept: inputs kept in the sparse "
          "calls; dense: share of calls that fell back to dense; same: generated tokens equal to dense's")
    print(f"{'method':<14} {'tok/s':>7} {'ratio':>6} {'MB/tok':>7} {'bound':>6} {'of bound':>8} {'PPL ratio':>9} "
          f"{'kept':>5} {'dense':>5} {'same':>5}")
    for r in rows:
        print(f"{r['method']:<14} {r['tokens_per_s']:>7.2f} {r['ratio']:>6.3f} {r['mb_per_token']:>7.1f} "
              f"{r['bound']:>6.2f} {r['of_bound']:>8.2f} {r.get('ppl_ratio', 1.0):>9.4f} "
              f"{r.get('decode_kept_share', 1.0):>5.2f} {r.get('dense_fallback_share', 0.0):>5.2f} "
              f"{r.get('same_tokens_as_dense', 1.0):>5.2f}")
    block = len(model.model.layers) // 2
    micro = microbenchmark(model, result.methods[0], prompt, block)
    print(f"\nper-projection microbenchmark, block {block}, {result.methods[0].method} thresholds, batch 1")
    for r in micro:
        print(f"{r['projection']:<5} {r['shape']:>9} kept {r['kept']:.2f}  dense {r['dense_us']:7.1f} us  "
              f"sparse {r['sparse_us']:7.1f} us  speedup {r['speedup']:.2f} (bound {r['bound']:.2f})")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"measure": result.to_dict(), "decode": rows, "micro": micro, "speeds": speeds}, f, indent=2)


if __name__ == "__main__":
    main()
