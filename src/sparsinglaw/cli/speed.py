"""``sparsinglaw speed``: decode tokens/s and FFN or projection latency, dense versus the sparse path.

One path (``sparse.speed``) keyed by the thresholds kind's sparse modules: output thresholds (and
``--zeros-only``) run through the sparse FFNs, input and combined thresholds through the input-sparse
projections, all seven per block. The fallback options are one ``sparse.SparsePolicy``'s two limits, the
same for every kind; what is not given is the kind's default."""

from __future__ import annotations

import argparse
import logging

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_deprecated_alias,
    add_json_arg,
    add_model_args,
    add_output_arg,
    check_new_output,
    load_model_from_args,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.errors import ConfigError


def register(sub) -> None:
    parser = sub.add_parser("speed", help="decode speed, dense vs the sparse FFNs or input-sparse projections",
                            formatter_class=HelpFormatter)
    add_model_args(parser)
    group = parser.add_argument_group("sparsity")
    group.add_argument("--thresholds", help="thresholds file (output, input or combined kind) or a 'sparsinglaw "
                       "measure --output' result (PPL-p%%); input and combined kinds run every projection sparsely")
    group.add_argument("--zeros-only", action="store_true",
                       help="drop exactly the neurons with h_i == 0 (ReLU models; ignores --thresholds)")
    # --max-tokens means evaluation tokens in measure, pareto, inputs and track; the fallback has its own names
    group.add_argument("--fallback-tokens", type=int, default=None,
                       help="calls with more tokens than this run dense (default: 16 for FFNs; projections: "
                            "4, the most their kernel takes)")
    group.add_argument("--fallback-ratio", type=float, default=None,
                       help="run dense when a call's union of units to read (candidate neurons, kept inputs) "
                            "exceeds this share of them (default: 0.3 for FFNs, 0.8 for projections)")
    add_deprecated_alias(group, "--max-tokens", "--fallback-tokens", "fallback_tokens", type=int)
    add_deprecated_alias(group, "--max-ratio", "--fallback-ratio", "fallback_ratio", type=float)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--batch-sizes", default="1,4", help="comma-separated decode batch sizes")
    run_group.add_argument("--new-tokens", type=int, default=32, help="generated tokens per sequence")
    run_group.add_argument("--prompt-len", type=int, default=32, help="prompt tokens (built-in English corpus)")
    run_group.add_argument("--repeats", type=int, default=3, help="interleaved dense/sparse repetitions")
    add_output_arg(run_group, "write the report as JSON here")
    add_json_arg(run_group)
    parser.set_defaults(func=run)


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--batch-sizes must be positive integers, got {text!r}")
    return sizes


def _prompts(tokenizer, prompt_len: int, count: int):
    from sparsinglaw.data import build_eval_data, builtin_documents

    data = build_eval_data(tokenizer, builtin_documents(), seq_len=prompt_len, max_tokens=prompt_len * count)
    if data.n_sequences < count:
        raise ConfigError(f"the built-in corpus gives {data.n_sequences} prompts of {prompt_len} tokens, "
                          f"fewer than the largest batch {count}; lower --prompt-len")
    return data.input_ids[:count]


def _load(args: argparse.Namespace):
    """The thresholds, or None for --zeros-only."""
    from sparsinglaw.thresholds import load_thresholds

    if not args.thresholds and not args.zeros_only:
        raise ConfigError("pass --thresholds RESULT.json (from 'sparsinglaw measure -o') or --zeros-only")
    return None if args.zeros_only else load_thresholds(args.thresholds)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.sparse import SparsePolicy, resolve_policy
    from sparsinglaw.sparse.speed import compare_speed, describe, speed_path

    sizes = _batch_sizes(args.batch_sizes)
    thresholds = _load(args)
    policy = resolve_policy(SparsePolicy(max_tokens=args.fallback_tokens, max_share=args.fallback_ratio),
                            speed_path(thresholds, args.zeros_only).modules)  # out of range: before the model loads
    if args.output:
        check_new_output(args, args.output)
    model, tokenizer = load_model_from_args(args)
    mode = "zeros-only (exact h != 0)" if args.zeros_only else describe(thresholds, args.thresholds)
    report = compare_speed(model, thresholds, prompts=_prompts(tokenizer, args.prompt_len, max(sizes)),
                           zeros_only=args.zeros_only, batch_sizes=sizes, new_tokens=args.new_tokens,
                           repeats=args.repeats, policy=policy, model_name=args.model, mode=mode)
    print_table(args, report.table())
    for line in report.warnings():  # nothing ran sparsely at some batch size: its ratio is no speedup
        logging.getLogger("sparsinglaw").warning(line)
    doc, moved = report.to_dict(), False
    if args.output:
        from sparsinglaw.cli.output_paths import save_with_fallback
        from sparsinglaw.fileio import atomic_write_json

        written, moved = save_with_fallback(lambda path: atomic_write_json(path, doc), args.output, "report")
        print_note(args, f"wrote {written}")
    print_json(args, doc)
    return int(moved)
