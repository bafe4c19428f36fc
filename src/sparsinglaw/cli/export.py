"""``sparsinglaw export``: a transformers model directory that applies the thresholds in its own forward."""

from __future__ import annotations

import argparse

from sparsinglaw.cli.common import add_model_args, set_threads


def register(sub) -> None:
    parser = sub.add_parser(
        "export", help="write a model directory whose forward applies the thresholds (no sparsinglaw needed)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Saves the model with a self-contained modeling_sparse.py; load it with "
                    "AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True).",
    )
    add_model_args(parser)
    parser.add_argument("--thresholds", required=True, help="thresholds file or 'sparsinglaw measure --output' result")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.export import export_sparse
    from sparsinglaw.models.loading import load_model
    from sparsinglaw.outputs import check_writable
    from sparsinglaw.thresholds import Thresholds

    thresholds = Thresholds.load(args.thresholds)
    check_writable(args.out, "dir", option="--out")
    set_threads(args)
    model, tokenizer = load_model(args.model, hidden_act=args.hidden_act, trust_remote_code=args.trust_remote_code,
                                  dtype=_torch_dtype(args.dtype), device_map=args.device_map)
    out = export_sparse(model, tokenizer, thresholds, args.out, overwrite=args.overwrite)
    print(f"wrote {out}: load with AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)")
    return 0


def _torch_dtype(name: str):
    import torch  # here, not at import time: --help needs no torch

    return getattr(torch, name)
