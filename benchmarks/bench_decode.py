"""End-to-end decode, dense versus sparse FFNs, at PPL-1% thresholds.

    .venv/bin/python benchmarks/bench_decode.py                                   # tiny random ReLU Llama
    .venv/bin/python benchmarks/bench_decode.py --model DIR --thresholds FILE     # a trained model

A model trained by this project, at the paper's 0.1B FFN shape but 4 layers (3.5 minutes on 2 cores; 131k
tokens, so barely trained: 24% of ReLU outputs non-zero, PPL-1% at 1.5% active):

    sparsinglaw train tiny run_dir=runs/decode-relu model.hidden_size=768 model.num_layers=4 \
        model.head_dim=64 model.intermediate_size=1920 tokenizer.vocab_size=1024 seq_len=128 batch_size=8 \
        token_budget=131072 checkpoint_every_tokens=65536 data.max_documents=1000 optim.lr=1e-3
    sparsinglaw measure --model runs/decode-relu/checkpoint-128 --metric pplp --p 1 --max-tokens 2048 \
        --output runs/decode-relu/pplp.json
    .venv/bin/python benchmarks/bench_decode.py --model runs/decode-relu/checkpoint-128 \
        --thresholds runs/decode-relu/pplp.json

Without ``--model`` it builds a random ReLU Llama with the same shape and a byte-level BPE trained on the
built-in corpus. A random ReLU gate fires on about half the neurons; trained ReLU models fire on 6-10%
(docs/paper.md section 4), so each layer's gate bias is set so that about ``--target-ratio`` of its ReLU outputs
are non-zero on built-in English text, and the model is trained briefly (``--train-steps``, AdamW on the
built-in corpus: an untrained model's FFNs do not matter to its perplexity, and PPL-1% would drop every
neuron). Its PPL-1% thresholds are then measured with ``measure(model, data, MeasureConfig(metric="pplp",
p=1.0))`` on held-out built-in text (an operating point of a barely trained model, not a quality claim), and decode is timed at
batch sizes 1..16 with the default fallback policy, so the table shows where the sparse path stops paying
and falls back to dense. The zeros-only rows (exact ReLU zeros, the dense model's outputs) come too.
Ratios are of medians of interleaved dense/sparse repetitions in this run.
"""

from __future__ import annotations

import argparse

import torch
from common import REPO  # noqa: F401  (puts tests/ on sys.path for the tokenizer helper)

from sparsinglaw.data import build_eval_data, builtin_documents
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.models import find_ffn_layers
from sparsinglaw.sparse.speed import compare_speed
from sparsinglaw.thresholds import Thresholds


def tiny_relu_llama(layers: int, target_ratio: float, train_steps: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers import text_tokenizer

    tokenizer = text_tokenizer(vocab=1024)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=1920,
                         num_hidden_layers=layers, num_attention_heads=12, num_key_value_heads=12,
                         max_position_embeddings=512, hidden_act="relu", mlp_bias=True, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    ids = build_eval_data(tokenizer, builtin_documents(), seq_len=128, max_tokens=512).input_ids
    with torch.no_grad():
        for block in model.model.layers:
            for lin in (block.mlp.gate_proj, block.mlp.up_proj, block.mlp.down_proj):
                lin.bias.zero_()
        for block in model.model.layers:  # in order: each layer sees the already-sparsified earlier ones
            seen = {}
            hook = block.mlp.gate_proj.register_forward_hook(lambda _m, _a, out, seen=seen: seen.setdefault("g", out))
            model(input_ids=ids)
            hook.remove()
            block.mlp.gate_proj.bias.fill_(-float(torch.quantile(seen["g"].flatten()[:2_000_000], 1 - target_ratio)))
    from helpers import fit_briefly

    return fit_briefly(model, tokenizer, steps=train_steps, seq_len=64, lr=2e-3), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained model directory (default: tiny random ReLU Llama)")
    parser.add_argument("--thresholds", help="its thresholds file / measure result (default: measure PPL-1%%)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--target-ratio", type=float, default=0.1)
    parser.add_argument("--train-steps", type=int, default=30, help="brief training of the tiny model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", default="1,2,4,8,16")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        from sparsinglaw.models.loading import load_model

        model, tokenizer = load_model(args.model)
        name = args.model
    else:
        model, tokenizer = tiny_relu_llama(args.layers, args.target_ratio, args.train_steps)
        name = f"random ReLU Llama {args.layers}x(768, 1920), gate bias for ~{args.target_ratio:.0%} active"
    data = build_eval_data(tokenizer, builtin_documents()[40:], seq_len=128, max_tokens=1024)
    if args.thresholds:
        thresholds = Thresholds.load(args.thresholds)
    else:
        result = measure(model, data, MeasureConfig(metric="pplp", p=1.0, level=0.0), model_name=name)
        thresholds = Thresholds.from_result(result)
        print(f"PPL-1% thresholds: PPL ratio {result.ppl_ratio:.4f}, activation ratio {result.activation_ratio:.4f}")
    thresholds.check_compatible(find_ffn_layers(model))
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    prompts = build_eval_data(tokenizer, builtin_documents(), seq_len=32, max_tokens=32 * max(sizes)).input_ids
    for mode, kwargs in (("PPL-1% thresholds", {"thresholds": thresholds}), ("zeros-only", {"zeros_only": True})):
        report = compare_speed(model, prompts=prompts, batch_sizes=sizes, new_tokens=args.new_tokens,
                               repeats=args.repeats, model_name=name, mode=mode, **kwargs)
        print(report.table())


if __name__ == "__main__":
    main()
