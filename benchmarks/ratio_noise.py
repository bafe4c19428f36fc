"""Where the noise of the PPL ratio comes from: per-token losses at nearby CETTs on SmolLM2-135M.

    .venv/bin/python benchmarks/ratio_noise.py [--tokens 512] [--cetts C1 C2 ...]

The PPL-p% search on 512 tokens needs more sparse passes than the trend of ratio(c) would suggest because
the ratio jumps between CETTs a fraction of a percent apart. This runs a sparse pass at each CETT given
(thresholds from the library's dense statistics, ``sparsinglaw.measure.Measurement``) and, for each pair of
neighbouring CETTs, prints how the predicted tokens' losses moved: the net change (what moves the ratio),
the total absolute change, the share of tokens moving by more than 0.01 and 0.05 nats, the share of the
movement carried by the five largest moves, and the net change that independent signs would give
(per-token standard deviation x sqrt(tokens)). A net change of that size with no dominant tokens means the
noise is many small moves of either sign, which only more evaluation tokens average out.

The default CETTs are three the search tried on the benchmark's slice (``bench_pplp.py``) and one 0.002% above
the first. Measured: the sparse pass at 0.02905 moves each token's loss by 0.12 nats (standard deviation,
80% of the 508 tokens by more than 0.01) to raise the total by 1.15 nats (ratio 1.00227). From there, +0.002%
of CETT moves 19% of the tokens by more than 0.01 nats and the ratio by +0.00022; +0.3% moves half of them
(standard deviation 0.026-0.028, the five largest moves carrying 7% of the movement) and the ratio by
+0.00004, the next +0.9% by +0.00223: net changes of the size independent signs predict (0.26-0.63 nats,
ratio 0.0005-0.0012 on 508 tokens).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from common import english, smollm2

from sparsinglaw import metrics
from sparsinglaw.capture.hooks import attach
from sparsinglaw.measure import MeasureConfig, Measurement


def token_nll(model, input_ids: torch.Tensor, layers, applied=None) -> np.ndarray:
    """Per predicted token NLL (nats), shape (sequences, seq_len - 1); ``applied`` zeroes inactive neurons."""

    def sparsify(layer, h, s):
        return h * applied.rule(layer, h, s).to(h.dtype)

    with torch.no_grad():
        if applied is None:
            logits = model(input_ids=input_ids, use_cache=False).logits
        else:
            with attach(layers, sparsify):
                logits = model(input_ids=input_ids, use_cache=False).logits
    log_probs = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return -log_probs.gather(-1, input_ids[:, 1:, None])[..., 0].numpy()


def describe_move(before: np.ndarray, after: np.ndarray) -> str:
    move = (after - before).ravel()
    size = np.abs(move)
    top5 = np.sort(size)[::-1][:5].sum() / max(size.sum(), 1e-30)
    independent = move.std() * math.sqrt(move.size)
    return (f"net {move.sum():+.3f} nats (ratio x{math.exp(move.sum() / move.size):.5f}), total |move| "
            f"{size.sum():.2f}, tokens > 0.01: {np.mean(size > 0.01):.0%}, > 0.05: {np.mean(size > 0.05):.0%}, "
            f"five largest carry {top5:.1%}, per-token sd {move.std():.4f}, net sd if signs independent "
            f"{independent:.2f} nats")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--cetts", type=float, nargs="+",
                        default=[0.029049473241874846, 0.02905, 0.029142305441369174, 0.029405571398824475])
    args = parser.parse_args()
    model, tokenizer = smollm2()
    data = english(tokenizer, args.tokens)
    measurement = Measurement(model, data, MeasureConfig(metric="pplp", batch_size=4))
    measurement.dense(cett_curves=True)
    dense = token_nll(model, data.input_ids, measurement.layers)
    losses = {}
    for c in sorted(args.cetts):
        applied = metrics.get_metric("cett").apply(c, curves=measurement.curves, layers=measurement.layers)
        losses[c] = token_nll(model, data.input_ids, measurement.layers, applied)
        ratio = math.exp(losses[c].mean() - dense.mean())
        print(f"CETT {c:.8g}: PPL ratio {ratio:.5f}; dense -> sparse: {describe_move(dense, losses[c])}", flush=True)
    ordered = sorted(losses)
    for a, b in zip(ordered, ordered[1:]):
        print(f"CETT {a:.8g} -> {b:.8g} ({b / a - 1:+.2g}): {describe_move(losses[a], losses[b])}")


if __name__ == "__main__":
    main()
