"""``sparsinglaw data SOURCE -o DIR``: tokenize a corpus once into memory-mapped token shards.

SOURCE is a local ``.txt`` / ``.jsonl`` / ``.parquet`` file or a folder of them, or a ``datasets`` name
(streamed; ``--datasets`` streams a local file or folder through ``datasets`` too). The shards are what
training reads with ``data.source=DIR`` (see ``sparsinglaw.data.shards``). Rerunning the same command after
an interruption continues where it stopped and gives the same shards.
"""

from __future__ import annotations

import argparse

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_output_arg,
    key_value_table,
    print_json,
    print_table,
    require_output,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="tokenize a corpus into memory-mapped token shards for training",
        description="Stream a corpus, tokenize it (with --tokenizer, or a byte-level BPE trained on a sample) "
                    "and write token shards plus a manifest into DIR. Resumable: rerun the same command.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  sparsinglaw data corpus.jsonl -o shards/mine\n"
               "  sparsinglaw data texts/ -o shards/texts --tokenizer runs/x/tokenizer\n"
               "  sparsinglaw data HuggingFaceFW/fineweb-edu --split train -o shards/fineweb\n"
               "then: sparsinglaw train run.toml data.source=shards/mine",
    )
    parser.add_argument("source", help="a .txt/.jsonl/.parquet file or folder, or a datasets name")
    add_output_arg(parser, "shard directory (new or empty, or an unfinished one of the same command)",
                   required=True)
    parser.add_argument("--tokenizer", default=None, help="a local tokenizer directory (default: train a BPE)")
    parser.add_argument("--vocab-size", type=int, default=8192, help="vocabulary of the trained BPE")
    parser.add_argument("--max-train-chars", type=int, default=50_000_000,
                        help="characters of the sample the BPE is trained on")
    parser.add_argument("--text-field", default="text", help="text field of JSONL/parquet records, dataset column")
    parser.add_argument("--split", default="train", help="dataset split (datasets sources)")
    parser.add_argument("--datasets", action="store_true", help="stream SOURCE through the datasets library")
    parser.add_argument("--validation-fraction", type=float, default=0.05,
                        help="share of documents held out for validation (by a hash of each document)")
    parser.add_argument("--shard-tokens", type=int, default=2**25, help="training tokens per shard file")
    parser.add_argument("--batch-documents", type=int, default=512, help="documents tokenized per batch")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.data.shard_writer import ShardSettings, write_shards
    from sparsinglaw.errors import ConfigError

    require_output(args)
    if args.vocab_size < 260:
        raise ConfigError(f"--vocab-size={args.vocab_size} must be >= 260 (256 bytes plus special tokens)")
    settings = ShardSettings(source=args.source, text_field=args.text_field, split=args.split,
                             via_datasets=args.datasets, validation_fraction=args.validation_fraction,
                             shard_tokens=args.shard_tokens, batch_documents=args.batch_documents)
    manifest = write_shards(settings, args.output, tokenizer_path=args.tokenizer, vocab_size=args.vocab_size,
                            max_train_chars=args.max_train_chars, progress=not args.json)
    print_table(args, manifest_table(manifest, args.output))
    print_json(args, manifest)
    return 0


def manifest_table(manifest: dict, output) -> str:
    """What was written, one aligned line a quantity (counts are exact: no rounding, no interval)."""
    totals = manifest["totals"]
    rows = {"shards": f"{len(manifest['shards'])} in {output}",
            "training": f"{totals['train_tokens']:,} tokens ({totals['train_documents']:,} documents)",
            "validation": f"{totals['valid_tokens']:,} tokens ({totals['valid_documents']:,} documents)",
            "on disk": f"{_size(totals['bytes'])} ({manifest['settings']['dtype']})"}
    return key_value_table(rows) + f"\nthen: sparsinglaw train CONFIG data.source={output}"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 2**10:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    import sys

    from sparsinglaw.cli import main as cli_main

    return cli_main(["data", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
