"""``sparsinglaw study CONFIG [--force] [--no-report] [--dry-run] [key.sub=value ...]``: run a whole study.

CONFIG is a study file or a preset (``demo``, ``mini``, ``reproduce``, ``paper-0.1b``, ``gpu-small``). Every
cell is trained and tracked, then the laws fitted and the report written; rerunning continues."""

from __future__ import annotations

import argparse
import json

from sparsinglaw.cli.common import HelpFormatter, add_json_arg, key_value_table, print_json, print_table


def register(subparsers) -> None:
    from sparsinglaw.study.config import PRESETS

    parser = subparsers.add_parser(
        "study", help="train, track, fit and report a grid of models from one config",
        description="Run a study: activation x (parameter budget, width-depth ratio) x token budget. Resumable.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  sparsinglaw study demo --dry-run\n  sparsinglaw study study.toml out_dir=runs/s1\n"
               "  sparsinglaw study study.toml launcher=torchrun nproc=2",
    )
    parser.add_argument("config", help=f"TOML or YAML study file, or a preset ({', '.join(PRESETS)})")
    # REMAINDER keeps options given after the overrides too; run() picks them out.
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key.sub=value",
                        help="override study settings (base.seq_len=64)")
    parser.add_argument("--force", action="store_true", help="reuse an out_dir made with a different config")
    parser.add_argument("--no-report", action="store_true", help="stop after fitting (no HTML report)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and the cells, then stop")
    parser.add_argument("--device", default=None,
                        help="accelerator the dry run's time estimate assumes: cpu, cuda, a100, h100 or h200 "
                             "(default: the detected GPU, else cuda for bf16 studies and cpu for the others)")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.errors import ConfigError
    from sparsinglaw.study.config import load_study
    from sparsinglaw.study.runner import run_study

    flags = {"--force": "force", "--no-report": "no_report", "--dry-run": "dry_run", "--json": "json"}
    overrides = _take_device(args)
    for item in overrides:
        if item in flags:
            setattr(args, flags[item], True)
        elif item.startswith("-"):
            raise ConfigError(f"unknown option {item!r} (options: {', '.join([*flags, '--device'])})")
    cfg = load_study(args.config, [o for o in overrides if o not in flags])
    cfg.require_corpus()
    if args.dry_run:
        return _dry_run(args, cfg)
    summary = run_study(cfg, force=args.force, report=not args.no_report)
    print_table(args, key_value_table(summary))
    print_table(args, _verdicts(cfg.out_dir))
    print_json(args, summary)
    return 0


def _verdicts(out_dir) -> str:
    """The study's checks against the paper (comparison.json, written by the fitting stage), as a table."""
    from pathlib import Path

    from sparsinglaw.cli.demo import verdict_table
    from sparsinglaw.store.layout import COMPARISON

    path = Path(out_dir) / COMPARISON
    return "\n" + verdict_table(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else ""


def _take_device(args: argparse.Namespace) -> list[str]:
    """``--device NAME`` (or ``--device=NAME``) given among the overrides, taken out of them."""
    rest, items = [], iter(args.overrides)
    for item in items:
        if item == "--device":
            args.device = next(items, None)
        elif item.startswith("--device="):
            args.device = item.partition("=")[2]
        else:
            rest.append(item)
    return rest


def _shard_line(shards: dict | None, source) -> str:
    if shards is None:
        return (f"# data: {source or 'builtin'} is read and tokenized by each cell (for a large corpus write token "
                "shards once: sparsinglaw data SOURCE -o DIR, then base.data.source=DIR)")
    size = f"{shards['bytes'] / 2**30:.2f} GiB" if shards["bytes"] >= 2**30 else f"{shards['bytes'] / 2**20:.1f} MiB"
    return (f"# shards: {shards['directory']}, {size} on disk in {shards['files']} files, "
            f"{shards['train_tokens']:,} training tokens ({shards['epochs']:.2f} epochs for the largest cell), "
            f"{shards['valid_tokens']:,} validation tokens")


def _dry_run(args: argparse.Namespace, cfg) -> int:
    """The resolved config, the cells and the cost estimate (as one JSON document with --json)."""
    from sparsinglaw.study.config import estimate

    cells, est = [cell.describe() for cell in cfg.cells()], estimate(cfg, getattr(args, "device", None))
    print_json(args, {"config": cfg.to_dict(), "cells": cells, "estimate": est})
    lines = [cfg.to_toml().rstrip(), "", "# cells", *(json.dumps(cell) for cell in cells), "",
             f"# {est['cells']} cells, {est['tokens']:,} training tokens, {est['train_flops']:.3g} FLOPs: about "
             f"{est['train_hours']:.2g} h of training on {est['device']} (assumed {est['assumed_flops_per_s']:.0e} "
             "FLOP/s sustained; tracking adds about a third on CPU)",
             _shard_line(est["shards"], (cfg.base.get("data") or {}).get("source"))]
    print_table(args, "\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sparsinglaw.cli.study`` (e.g. under torchrun): the same as ``sparsinglaw study``."""
    import sys

    from sparsinglaw.cli import main as cli_main

    return cli_main(["study", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
