"""How many evaluation tokens make the PPL-p% interval narrow?

    .venv/bin/python benchmarks/bench_interval.py [--tokens 512 2048 8192]

Measures PPL-1% on SmolLM2-135M over growing prefixes of the built-in corpus and prints, for each size,
the activation ratio, its 90% bootstrap interval and width, the CETT interval, sparse passes and warnings.
"""

from __future__ import annotations

import argparse

from common import english, smollm2

from sparsinglaw.measure import MeasureConfig, measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()
    model, tokenizer = smollm2()
    print(f"{'tokens':>7} {'act.ratio':>9} {'90% interval':>18} {'width':>7} {'CETT':>7} {'CETT interval':>18} {'passes':>6}  warnings")
    for tokens in args.tokens:
        data = english(tokenizer, tokens, seq_len=args.seq_len)
        r = measure(model, data, MeasureConfig(metric="pplp", p=1.0, batch_size=8))
        lo, hi = r.interval["activation_ratio"]
        clo, chi = r.interval["cett"]
        notes = "; ".join(w.split(";")[0][:60] for w in r.warnings) or "-"
        print(f"{data.n_tokens:>7} {r.activation_ratio:>9.4f} [{lo:.4f}, {hi:.4f}] {hi - lo:>7.4f} "
              f"{r.setting['cett']:>7.4f} [{clo:.4f}, {chi:.4f}] {r.forward_passes:>6}  {notes}", flush=True)


if __name__ == "__main__":
    main()
