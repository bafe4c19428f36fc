"""``sparsinglaw export``: a transformers model directory that applies the thresholds in its own forward."""

from __future__ import annotations

import argparse

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_model_args,
    add_output_arg,
    load_model_from_args,
    print_json,
    print_table,
    require_output,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "export", help="write a model directory whose forward applies the thresholds (no sparsinglaw needed)",
        formatter_class=HelpFormatter,
        description="Saves the model with a self-contained modeling_sparse.py; load it with "
                    "AutoModelForCausalLM.from_pretrained(OUTPUT, trust_remote_code=True) (without it, transformers "
                    "builds the dense base model) and AutoTokenizer.from_pretrained(OUTPUT) (plain). config.json "
                    "keeps the base model_type and names the sparse class in architectures.",
    )
    add_model_args(parser)
    parser.add_argument("--thresholds", required=True,
                        help="thresholds file (output, input or combined kind) or a 'sparsinglaw measure --output' result")
    add_output_arg(parser, "output directory (new or empty)", old=("--out",), required=True,
                   overwrite="replace the files of a non-empty --output (without it a non-empty one is refused, "
                             "as every command refuses to write over an existing result)")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.cli.output_paths import check_writable
    from sparsinglaw.export import export_sparse
    from sparsinglaw.thresholds import load_thresholds

    require_output(args)
    thresholds = load_thresholds(args.thresholds)
    check_writable(args.output, "dir", option="--output")
    model, tokenizer = load_model_from_args(args)
    out = export_sparse(model, tokenizer, thresholds, args.output, overwrite=args.overwrite)
    print_table(args, f"wrote {out}: load with AutoModelForCausalLM.from_pretrained({str(out)!r}, "
                      "trust_remote_code=True) (without it: the dense base model)")
    print_json(args, {"output": str(out), "thresholds": str(args.thresholds), "model": args.model})
    return 0
