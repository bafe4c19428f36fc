"""Arguments and loading shared by the subcommands that run a model on evaluation data."""

from __future__ import annotations

import argparse
import logging

from sparsinglaw.errors import ConfigError
from sparsinglaw.tables import (  # noqa: F401  (the table helpers, named here for the commands)
    aligned_table,
    estimate_cell,
    format_estimate,
    format_number,
    format_with_error,
    interval_decimals,
    key_value_table,
)

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


def load_model_from_args(args: argparse.Namespace):
    """(model, tokenizer) from the parsed model arguments, after applying ``--threads``."""
    import torch

    from sparsinglaw.models.loading import load_model

    set_threads(args)
    return load_model(args.model, hidden_act=args.hidden_act, trust_remote_code=args.trust_remote_code,
                      dtype=getattr(torch, args.dtype), device_map=args.device_map)


def load_model_and_data(args: argparse.Namespace):
    """(model, tokenizer, eval data) from the parsed model and data arguments."""
    from sparsinglaw.data import build_eval_data, load_documents
    from sparsinglaw.models.loading import check_seq_len

    docs = load_documents(args.data, text_field=args.text_field, split=args.split)
    model, tokenizer = load_model_from_args(args)
    check_seq_len(model, args.seq_len)
    data = build_eval_data(tokenizer, docs, seq_len=args.seq_len, max_tokens=args.max_tokens,
                           source=str(args.data or "builtin"))
    return model, tokenizer, data


# --- words: one sentence each, in --help (main parser's epilog, measure, pareto, inputs, eval) and the README ---

GLOSSARY = {
    "activation ratio": "the share of FFN neurons (or projection inputs) kept nonzero, over tokens; "
                        "sparsity is 1 minus it.",
    "CETT": "cumulative errors of tail truncation: the share of an FFN's output norm lost when its neurons "
            "with the smallest contributions |h_i| ||W_down[:, i]|| are zeroed; a CETT target c gives each "
            "layer the threshold t_l that loses that share (docs/paper.md 2.4).",
    "PPL-p%": "the sparsest CETT setting whose perplexity is at most (1 + p/100) times the dense model's; "
              "a model's activation ratio 'at PPL-1%' is the one there (docs/paper.md 2.6).",
    "ours / TEAL / combined": "input sparsity of every projection: ours zeroes inputs x_j with "
                              "|x_j| ||W[:, j]|| below a CETT-style threshold per projection, TEAL (Liu et al. "
                              "2024) zeroes |x_j| below a threshold at one sparsity level for all projections "
                              "(uniform) or per block (greedy), combined applies FFN-neuron thresholds and ours "
                              "together, each solved at p/2.",
}


def glossary(*terms: str) -> str:
    """``term: sentence`` lines for --help (a description or epilog; HelpFormatter keeps the lines)."""
    import textwrap

    return "words:\n" + "\n".join(textwrap.fill(f"{term}: {GLOSSARY[term]}", 100, initial_indent="  ",
                                                 subsequent_indent="    ") for term in terms or GLOSSARY)


# --- conventions shared by every subcommand: help format, output flags, deprecated spellings, --json ---


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, except where a default says nothing (None, False, an
    empty list) or the help already names it; descriptions and epilogs written on several lines (examples)
    keep their lines, one-paragraph ones are wrapped to the terminal."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        silent = default is None or default is False or default is argparse.SUPPRESS or default == []
        if silent or "%(default)" in text or "(default" in text:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: sets the new option's value and leaves a note that ``main`` logs as a
    warning once logging is set up (parsing runs before it is)."""

    def __init__(self, option_strings, dest, new_flag: str = "", **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        notes = list(getattr(namespace, "deprecations", None) or [])
        notes.append(f"{option_string} is deprecated and will be removed; use {self.new_flag}")
        namespace.deprecations = notes


def add_deprecated_alias(parser, old: str, new_flag: str, dest: str, *, flag: bool = False, type=None) -> None:
    """Accept ``old`` for ``new_flag`` (hidden from --help) so that existing scripts keep working."""
    extra = {"nargs": 0, "const": True} if flag else {"type": type}
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new_flag=new_flag, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS, **extra)


OVERWRITE_HELP = ("replace existing output files; without it a command refuses to write over an existing "
                  "result (every command, the same rule: nothing computed is lost)")


def add_output_arg(parser, help: str, *, old: tuple[str, ...] = (), overwrite: str | None = OVERWRITE_HELP,
                   **kwargs) -> None:
    """``--output/-o``, the one spelling of an output path (file or directory) in every command; ``old``
    spellings stay accepted with a deprecation warning. ``--overwrite`` comes with it (``overwrite``: its
    help; None for commands whose output directory is resumed or re-rendered in place)."""
    kwargs.setdefault("metavar", "PATH")
    if kwargs.get("required") and old:  # argparse would not count an old spelling: run() calls require_output
        kwargs["required"] = False
        help += " (required)"
    parser.add_argument("--output", "-o", help=help, **kwargs)
    for spelling in old:
        add_deprecated_alias(parser, spelling, "--output", "output", type=kwargs.get("type"))
    if overwrite:
        parser.add_argument("--overwrite", action="store_true", help=overwrite)


def check_new_output(args: argparse.Namespace, path, option: str = "--output", kind: str = "file"):
    """``check_writable`` plus the overwrite rule: an existing file is refused unless ``--overwrite``."""
    from pathlib import Path

    from sparsinglaw.cli.output_paths import OutputPathError, check_writable

    checked = check_writable(path, kind, option=option)
    if kind == "file" and Path(checked).is_file() and not getattr(args, "overwrite", False):
        raise OutputPathError(f"{option} {path} exists; pass --overwrite to replace it, or give another path")
    return checked


def require_output(args: argparse.Namespace) -> None:
    if getattr(args, "output", None) is None:
        raise ConfigError("--output/-o is required: give the path to write")


def add_json_arg(parser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON document on stdout (for scripts) instead of the table; "
                             "messages go to stderr")


def print_table(args: argparse.Namespace, text: str) -> None:
    """The human-readable result, on stdout unless ``--json`` asked for the machine-readable one."""
    if not getattr(args, "json", False):
        print(text)


def print_note(args: argparse.Namespace, text: str) -> None:
    """A line such as ``wrote PATH``: stdout beside the table, stderr (log) when stdout carries JSON."""
    if getattr(args, "json", False):
        log.info(text)
    else:
        print(text)


def print_json(args: argparse.Namespace, doc) -> None:
    if getattr(args, "json", False):
        import json

        print(json.dumps(doc, indent=2, default=_plain))


def _plain(value):
    """numpy scalars and arrays as numbers and lists, anything else (paths) as text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
