"""Arguments and loading shared by the subcommands that run a model on evaluation data."""

from __future__ import annotations

import argparse
import logging

from sparsinglaw.errors import ConfigError

# torch, transformers and the data readers are imported where they are used, so a subcommand's --help
# answers without loading them.

log = logging.getLogger("sparsinglaw")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=True, help="hub id, local directory, or a .gguf file")
    group.add_argument("--hidden-act", help="activation function to assume (GGUF files do not record it)")
    group.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (off by default)")
    group.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                       help="weights dtype (float32 on CPU; bf16 is much slower there)")
    group.add_argument("--device-map", default=None,
                       help="accelerate device map, e.g. 'auto' to spread a big model over devices")
    group.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def add_data_args(parser: argparse.ArgumentParser, *, max_tokens: int = 4096) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=None,
                       help="a .txt or .jsonl file, or a dataset name/dir (default: the built-in corpus)")
    group.add_argument("--text-field", default="text", help="text field of JSONL records / dataset column")
    group.add_argument("--split", default="train", help="dataset split")
    group.add_argument("--seq-len", type=int, default=256, help="tokens per evaluation sequence")
    group.add_argument("--max-tokens", type=int, default=max_tokens, help="evaluation tokens in total")
    group.add_argument("--batch-size", type=int, default=4, help="sequences per forward pass")


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (refusing 0 and negative counts, which torch would take or crash on)."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def load_model_and_data(args: argparse.Namespace):
    """(model, tokenizer, eval data) from the parsed model and data arguments."""
    import torch

    from sparsinglaw.data import build_eval_data, load_documents
    from sparsinglaw.models.loading import check_seq_len, load_model

    set_threads(args)
    docs = load_documents(args.data, text_field=args.text_field, split=args.split)
    model, tokenizer = load_model(
        args.model, hidden_act=args.hidden_act, trust_remote_code=args.trust_remote_code,
        dtype=getattr(torch, args.dtype), device_map=args.device_map,
    )
    check_seq_len(model, args.seq_len)
    data = build_eval_data(tokenizer, docs, seq_len=args.seq_len, max_tokens=args.max_tokens,
                           source=str(args.data or "builtin"))
    return model, tokenizer, data
