"""Cost and accuracy of the dense statistics pass (CETT curves) on SmolLM2-135M, per anchor stride.

    .venv/bin/python benchmarks/bench_stats_pass.py [--tokens 512] [--strides 1,4] [--repeats 3] [--clock cpu]

For each stride (1: every token; 0, the default: chosen from the token count by
``metrics.cett.auto_anchor_stride``) prints,
from one run with the passes interleaved: the statistics pass's wall time as a multiple of a plain forward of
the same tokens (median of ``--repeats``), and how close the exact CETT at the interpolated thresholds comes
to the target: |CETT(t_l(c)) / c - 1| over every other layer and c in 0.02-0.2 (median, 90th percentile, max).
The exact CETT here is the published definition evaluated on every token (one masked matmul per layer).
``--clock cpu`` times with the process's CPU time instead of the wall clock: on cores other jobs share, the
wall clock of both passes stretches by whatever else runs, the CPU time far less. It runs on one thread so
that CPU time is the work done (with two, idle-waiting threads count too and the kernels' one thread less).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import english, smollm2

from sparsinglaw.capture.hooks import attach
from sparsinglaw.measure import MeasureConfig, Measurement
from sparsinglaw.metrics.cett import auto_anchor_stride, dropped_norm_ratio

TARGETS = (0.02, 0.04, 0.07, 0.12, 0.2)


def plain_forward(model, data) -> None:
    with torch.no_grad():
        for _, ids in data.batches(4):
            model(input_ids=ids, use_cache=False)


def activations(model, layers, data) -> dict[int, torch.Tensor]:
    """Every FFN's h on every token, (N, d_f) per layer."""
    seen: dict[int, list[torch.Tensor]] = {}

    def keep(layer, h, y):
        seen.setdefault(layer.index, []).append(h.detach().reshape(-1, h.shape[-1]).float().clone())

    with torch.no_grad(), attach(layers, keep, output=True):
        plain_forward(model, data)
    return {i: torch.cat(parts) for i, parts in seen.items()}


def threshold_errors(curves, h: dict[int, torch.Tensor]) -> np.ndarray:
    errors = []
    for c in TARGETS:
        thresholds = curves.thresholds(c)
        for i in range(0, len(thresholds), 2):
            t = torch.tensor([thresholds[i]], dtype=torch.float32)
            exact = dropped_norm_ratio(h[i], curves._weight_t[i], curves.norms[i], t).mean()
            errors.append(abs(float(exact) / c - 1))
    return np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--strides", default="1,4", help="comma-separated anchor strides (0: from the tokens)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    model, tokenizer = smollm2(threads=1 if args.clock == "cpu" else 2)
    data = english(tokenizer, args.tokens)
    strides = [int(s) for s in args.strides.split(",")]
    plain_forward(model, data)  # warm-up: the first passes after loading GGUF weights run slower
    plain, passes, last = [], {s: [] for s in strides}, {}
    for _ in range(args.repeats):
        start = clock()
        plain_forward(model, data)
        plain.append(clock() - start)
        for stride in strides:
            measurement = Measurement(model, data, MeasureConfig(anchor_stride=stride))
            start = clock()
            measurement.dense(cett_curves=True)
            passes[stride].append(clock() - start)
            last[stride] = measurement
    forward = statistics.median(plain)
    h = activations(model, last[strides[0]].layers, data)
    print(f"plain forward over {data.n_tokens} tokens: {forward:.2f} s {args.clock} (median of {args.repeats})")
    for stride in strides:
        used = stride or auto_anchor_stride(data.n_tokens)
        errors = threshold_errors(last[stride].curves, h)
        print(f"anchor stride {used}{' (from the tokens)' if stride == 0 else ''}: statistics pass "
              f"{statistics.median(passes[stride]) / forward:.2f} plain forwards; |CETT(t(c))/c - 1| median "
              f"{np.median(errors):.4f}, p90 {np.quantile(errors, 0.9):.4f}, max {errors.max():.4f}")


if __name__ == "__main__":
    main()
