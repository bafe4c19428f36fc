"""``sparsinglaw train CONFIG [--dry-run] [--force] [key.sub=value ...]``: pre-train a small LLM.

CONFIG is a TOML or YAML file (or a preset name: ``tiny``, ``paper``). Distributed runs need no flag:
``torchrun --nproc_per_node 2 -m sparsinglaw train CONFIG`` (DDP); FSDP on GPUs through
``accelerate launch --use_fsdp -m sparsinglaw train CONFIG``.
"""

from __future__ import annotations

import argparse
import os

from sparsinglaw.cli.common import HelpFormatter, add_json_arg, key_value_table, print_json, print_table
from sparsinglaw.train.config import PRESETS, TrainConfig, load_config


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="pre-train a small LLM with a chosen activation and shape",
        description="Pre-train a causal LM from a TOML/YAML config; checkpoints every K tokens into the run "
                    "directory, resuming from the last complete checkpoint when restarted.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  sparsinglaw train tiny --dry-run\n  sparsinglaw train run.toml model.activation=silu "
               "model.ratio=64\n  torchrun --nproc_per_node 2 -m sparsinglaw train run.toml",
    )
    parser.add_argument("config", help=f"TOML or YAML config file, or a preset ({', '.join(PRESETS)})")
    _add_options(parser)
    # REMAINDER keeps options given after the overrides too (argparse cannot interleave positionals
    # with options); run() parses what it holds.
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key.sub=value",
                        help="override config values")
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config, the model's shape and parameter counts, then stop")
    parser.add_argument("--force", action="store_true",
                        help="continue a run directory created with a different config")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    add_json_arg(parser)


def _split_remainder(args: argparse.Namespace) -> argparse.Namespace:
    """Options mixed among the overrides (``CONFIG --dry-run a.b=1``) join the ones before CONFIG."""
    from sparsinglaw.errors import ConfigError

    late = argparse.ArgumentParser(prog="sparsinglaw train", add_help=False)
    _add_options(late)
    late.add_argument("overrides", nargs="*")
    try:
        extra = late.parse_intermixed_args(args.overrides)
    except SystemExit:
        raise ConfigError(f"cannot parse {' '.join(args.overrides)!r}; overrides look like key.sub=value") from None
    args.dry_run = args.dry_run or extra.dry_run
    args.force = args.force or extra.force
    args.json = args.json or extra.json
    args.threads = extra.threads if extra.threads is not None else args.threads
    args.overrides = extra.overrides
    return args


def plan(cfg: TrainConfig, world: int = 1, threads: int = 1) -> dict:
    """What a run will do: shape, parameter counts, steps, checkpoints and an estimated training time (the
    study's ``estimate``: FLOPs at an assumed sustained speed); no weights are allocated."""
    from sparsinglaw.data.shards import is_shard_dir, read_manifest
    from sparsinglaw.study.config import training_flops, training_time
    from sparsinglaw.train.modeling import describe
    from sparsinglaw.train.trainer import schedule_steps

    vocab = cfg.tokenizer.vocab_size
    if is_shard_dir(cfg.data.source):  # the shards' tokenizer, whatever tokenizer.* says
        vocab = read_manifest(cfg.data.source)["settings"]["vocab_size"]
    elif cfg.tokenizer.path:
        from sparsinglaw.data.tokenizer import load_tokenizer

        vocab = len(load_tokenizer(cfg.tokenizer.path))
    total = cfg.total_steps(world)
    return {
        **describe(cfg.model, vocab, cfg.seq_len),
        "processes": world,
        "tokens_per_step": cfg.tokens_per_step(world),
        "steps": total,
        "tokens": total * cfg.tokens_per_step(world),
        "checkpoint_every_steps": cfg.checkpoint_steps(world),
        "checkpoints": -(-total // cfg.checkpoint_steps(world)),
        "schedule_steps": schedule_steps(cfg, total),
        "estimate": training_time(training_flops(cfg, total * cfg.tokens_per_step(world)),
                                  "cpu" if cfg.dtype == "float32" else "cuda", threads * world),
    }


def format_plan(cfg: TrainConfig, info: dict) -> str:
    shape, params, est = info["shape"], info["parameters"], info["estimate"]
    lines = [
        "# resolved config",
        cfg.to_toml().rstrip(),
        "",
        "# plan",
        f"model          {info['family']} ({'gated' if shape['gated'] else 'non-gated'} FFN, {cfg.model.activation})",
        f"shape          d={shape['hidden_size']} L={shape['num_layers']} d_f={shape['intermediate_size']} "
        f"heads={shape['num_heads']} (kv {shape['num_kv_heads']}, head_dim {shape['head_dim']}) r={shape['ratio']:.1f}",
        f"parameters     non-embedding {params['non_embedding']:,} (paper formula {shape['formula_non_embedding_params']:,}), "
        f"embedding {params['embedding']:,}, total {params['total']:,}",
        f"vocabulary     {info['vocab_size']:,}",
        f"training       {info['steps']:,} steps x {info['tokens_per_step']:,} tokens = {info['tokens']:,} tokens "
        f"on {info['processes']} process(es)",
        f"schedule       warmup {info['schedule_steps']['warmup']}, stable {info['schedule_steps']['stable']}, "
        f"decay {info['schedule_steps']['decay']} steps",
        f"checkpoints    every {info['checkpoint_every_steps']:,} steps ({info['checkpoints']} in all) in {cfg.run_dir}",
        f"time           about {_duration(est['train_hours'])} of training on {est['device']} ({est['train_flops']:.3g} "
        f"FLOPs at an assumed {est['assumed_flops_per_s']:.0e} FLOP/s sustained, as study --dry-run estimates)",
    ]
    return "\n".join(lines)


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.2g} h"
    return f"{hours * 60:.2g} min" if hours * 60 >= 1 else f"{hours * 3600:.2g} s"


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsinglaw.errors import ConfigError
    from sparsinglaw.train.trainer import world_size

    args = _split_remainder(args)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    world = world_size()
    cfg.check_budget(world)
    if args.dry_run:
        info = plan(cfg, world, torch.get_num_threads())
        print_table(args, format_plan(cfg, info))
        print_json(args, {"config": cfg.to_dict(), "plan": info})
        return 0
    from sparsinglaw.cli.output_paths import check_writable
    from sparsinglaw.distributed import close_process_group
    from sparsinglaw.train.trainer import train

    check_writable(cfg.run_dir, "dir", option="run_dir")
    outcome = train(cfg, force=args.force)
    close_process_group()  # on success only: a rank that failed must not wait for the others in a barrier
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {"run_dir": str(outcome.run_dir), "tokens_seen": outcome.tokens_seen,
                   "train_loss": outcome.train_loss, "eval_loss": outcome.eval_loss,
                   "checkpoints": len(outcome.checkpoints), "tokens_per_second": round(outcome.tokens_per_second, 1)}
        print_table(args, key_value_table(summary) + "\nlosses: the last logged training loss and one pass over the "
                    "validation tokens (no interval)")
        print_json(args, summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sparsinglaw.cli.train`` (e.g. under torchrun): the same as ``sparsinglaw train``."""
    import sys

    from sparsinglaw.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
