"""Autocorrelation of the per-token loss changes (sparse minus dense NLL) on real text, SmolLM2-135M: how long
the blocks that PPL-p%'s noise estimate, stop rule and interval resample must be (metrics.blocks.BLOCK_TOKENS).

    .venv/bin/python benchmarks/loss_autocorrelation.py [--tokens 4096] [--seq-len 1024] [--cett 0.04 0.1]
        [--data /usr/share/common-licenses/GPL-3 ... | builtin]

For each CETT: one dense statistics pass (shared) and one sparse pass; d_t = sparse - dense NLL at each predicted
position. Prints the autocorrelation rho_k of d within sequences (pooled, around the overall mean), and for
block lengths L: the correlation of adjacent blocks' sums, and the standard error of the mean change computed
from blocks of L (sd of the block sums), relative to L = 1. Blocks are long enough once adjacent sums are
nearly uncorrelated and the standard error has stopped growing with L (a plateau: longer blocks only add
noise to the estimate, having fewer of them). The same for the active-neuron count per position, which the
interval's activation ratio resamples with the losses.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import smollm2

from sparsinglaw.data import build_eval_data, builtin_documents, load_documents
from sparsinglaw.measure import MeasureConfig, Measurement

LICENCES = ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"]


def autocorrelation(d: np.ndarray, max_lag: int) -> np.ndarray:
    """rho_k, k = 0..max_lag, of the rows of ``d`` (n, T) pooled, around the overall mean."""
    x = d - d.mean()
    var = float(np.mean(x * x))
    return np.array([1.0] + [float(np.mean(x[:, k:] * x[:, :-k])) / var for k in range(1, max_lag + 1)])


def blocks(d: np.ndarray, length: int) -> np.ndarray:
    """(n, T // length) sums of consecutive blocks of ``length`` (a partial tail dropped)."""
    n, t = d.shape
    usable = (t // length) * length
    return d[:, :usable].reshape(n, -1, length).sum(axis=2)


def block_table(d: np.ndarray, lengths: list[int]) -> list[tuple[int, int, float, float]]:
    """(L, blocks, adjacent-sum correlation, standard error of the mean change from blocks of L / from L = 1)."""
    def se(length: int) -> float:
        sums = blocks(d, length).reshape(-1)
        return float(np.std(sums - sums.mean(), ddof=1) * np.sqrt(len(sums))) / (len(sums) * length)

    base, rows = se(1), []
    for length in lengths:
        b = blocks(d, length)
        if b.shape[1] < 2:
            continue
        x = b - b.mean()
        adjacent = float(np.sum(x[:, 1:] * x[:, :-1]) / np.sqrt(np.sum(x[:, 1:] ** 2) * np.sum(x[:, :-1] ** 2)))
        rows.append((length, b.size, adjacent, se(length) / base))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--cett", type=float, nargs="+", default=[0.04, 0.1])
    parser.add_argument("--data", nargs="+", default=LICENCES)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model, tokenizer = smollm2(threads=args.threads)
    documents = (builtin_documents() if args.data == ["builtin"]
                 else [doc for path in args.data for doc in load_documents(path)])
    data = build_eval_data(tokenizer, documents, seq_len=args.seq_len, max_tokens=args.tokens)
    m = Measurement(model, data, MeasureConfig(metric="pplp"))
    m.dense(cett_curves=True)
    print(f"{data.n_tokens} tokens in {data.n_sequences} x {data.seq_len} of {', '.join(args.data)}")
    for c in args.cett:
        e = m.at("cett", c)
        d = (e.losses.token_nll - m.dense_losses.token_nll)[:, :-1].numpy()  # the last position predicts nothing
        rho = autocorrelation(d, 128)
        print(f"\nCETT {c}: PPL ratio {m.ppl_ratio(e):.4f}, per-token change mean {d.mean():.4f} sd {d.std():.4f}")
        print("lag   " + " ".join(f"{k:>6}" for k in (1, 2, 3, 4, 8, 16, 32, 64, 128)))
        print("rho_k " + " ".join(f"{rho[k]:>6.3f}" for k in (1, 2, 3, 4, 8, 16, 32, 64, 128)))
        print(f"sum of rho_k, k = 1..16: {rho[1:17].sum():.3f}; k = 1..64: {rho[1:65].sum():.3f}")
        print_blocks(d)
        active = e.activity.position_active[:, :-1].numpy()  # active neurons per position (the interval's other input)
        rho = autocorrelation(active, 128)
        print(f"active neurons per position: lag 1, 4, 16, 64 autocorrelation {rho[1]:.3f}, {rho[4]:.3f}, "
              f"{rho[16]:.3f}, {rho[64]:.3f}")
        print_blocks(active)


def print_blocks(values) -> None:
    print(f"{'L':>5} {'blocks':>7} {'adjacent corr':>14} {'SE(L) / SE(1)':>14}")
    for length, count, adjacent, ratio in block_table(values, [1, 4, 8, 16, 32, 64, 128, 256, 512, 1024]):
        print(f"{length:>5} {count:>7} {adjacent:>14.3f} {ratio:>14.3f}")


if __name__ == "__main__":
    main()
