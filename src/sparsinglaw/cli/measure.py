"""``sparsinglaw measure``: one metric at one setting (PPL-p% by default) with a table and JSON output."""

from __future__ import annotations

import argparse
import logging

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_data_args,
    add_deprecated_alias,
    add_json_arg,
    add_model_args,
    add_output_arg,
    check_new_output,
    glossary,
    load_model_and_data,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.cli.output_paths import save_with_fallback
from sparsinglaw.progress import partial_results

# The registered metrics, named here so that --help needs no torch (a test checks they match the registry).
METRICS = ("cett", "fat", "pplp", "topk", "zero")

log = logging.getLogger("sparsinglaw")


def register(sub) -> None:
    parser = sub.add_parser("measure", help="measure activation sparsity (Top-k, FAT, CETT, PPL-p%%, zeros)",
                            formatter_class=HelpFormatter,
                            description="Measures one metric at one setting and prints its activation ratio, "
                                        "PPL ratio and per-layer thresholds.\n"
                                        + glossary("activation ratio", "CETT", "PPL-p%"))
    add_model_args(parser)
    add_data_args(parser)
    group = parser.add_argument_group("metric")
    group.add_argument("--metric", default="pplp", choices=METRICS, help="what to measure")
    group.add_argument("--p", type=float, default=1.0, help="PPL-p%%: allowed perplexity increase, percent")
    group.add_argument("--cett", type=float, default=0.2, help="CETT target in [0, 1] (--metric cett)")
    group.add_argument("--epsilon", type=float, default=0.01, help="FAT threshold on |s| (--metric fat)")
    group.add_argument("--ratio", type=float, default=0.1, help="Top-k share kept, in (0, 1] (--metric topk)")
    group.add_argument("--topk-scope", default="token", choices=["token", "layer"],
                       help="rank per token, or across the layer tensor as the published code does")
    group.add_argument("--solution", default="trend", choices=["trend", "lowest-crossing"],
                       help="PPL-p%%: where the fitted trend of the PPL ratio crosses 1 + p/100, or the lowest "
                            "evaluated CETT whose own ratio is within --tolerance (closest to the published one)")
    group.add_argument("--tolerance", type=float, default=1e-3,
                       help="PPL-p%%: trend: its standard error at the answer, in PPL ratio; lowest-crossing: "
                            "|PPL ratio - target| accepted")
    group.add_argument("--max-sparse-passes", type=int, default=12, help="PPL-p%%: sparse forward passes at most")
    group.add_argument("--start-cett", type=float, default=0.05,
                       help="PPL-p%%: first CETT tried; a similar model's solution (a neighbouring checkpoint's) "
                            "saves bracketing passes")
    group.add_argument("--level", type=float, default=0.9, help="PPL-p%%: confidence level of the interval (0: none)")
    group.add_argument("--n-boot", type=int, default=1000, help="PPL-p%%: bootstrap resamples of the interval")
    group.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    add_deprecated_alias(group, "--ci", "--level", "level", type=float)
    add_deprecated_alias(group, "--bootstrap-samples", "--n-boot", "n_boot", type=int)
    out = parser.add_argument_group("output")
    add_output_arg(out, "write the result as JSON here")
    add_json_arg(out)
    out.add_argument("--detail-tokens", type=int, default=0,
                     help="keep the per-token x per-layer activation map for this many tokens")
    out.add_argument("--heatmap", help="PNG of the token x layer activation map (implies --detail-tokens 48)")
    out.add_argument("--neuron-frequency", action="store_true", help="include per-neuron frequencies in the JSON")
    out.add_argument("--frequency-plot", help="PNG histogram of per-neuron activation frequency per layer")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from sparsinglaw.measure import MeasureConfig

    detail = args.detail_tokens or (48 if args.heatmap else 0)
    return MeasureConfig(
        metric=args.metric, p=args.p, cett=args.cett, epsilon=args.epsilon, ratio=args.ratio,
        topk_scope=args.topk_scope, tolerance=args.tolerance, max_sparse_passes=args.max_sparse_passes,
        start_cett=args.start_cett, solution=args.solution, seq_len=args.seq_len, max_tokens=args.max_tokens,
        batch_size=args.batch_size, level=args.level, n_boot=args.n_boot, seed=args.seed,
        detail_tokens=detail, neuron_frequency=args.neuron_frequency or bool(args.frequency_plot),
    )


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable output paths before the model is loaded (one line, exit 2)."""
    for option, value in (("--output", args.output), ("--heatmap", args.heatmap),
                          ("--frequency-plot", args.frequency_plot)):
        if value:
            check_new_output(args, value, option)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.distributed import init_from_env, is_main_process
    from sparsinglaw.measure import measure

    config = config_from_args(args)  # validate before the (slow) model load
    check_outputs(args)
    init_from_env()  # under torchrun: shard the evaluation batches over the processes
    model, tokenizer, data = load_model_and_data(args)
    partial_results.track()  # one search, written at its end: Ctrl-C before then says nothing was written
    result = measure(model, data, config, tokenizer=tokenizer, model_name=args.model, progress=not getattr(args, "quiet", False))
    if not is_main_process():
        return 0
    print_table(args, result.table(warnings=False))
    for line in result.warnings:  # the guardrails' and the search's, on stderr (and in the JSON)
        log.warning(line)
    status = 0
    if args.output:
        written, moved = save_with_fallback(result.save, args.output, "result")
        status |= int(moved)
        print_note(args, f"wrote {written}")
    if args.heatmap or args.frequency_plot:
        status |= write_figures(args, result)
    print_json(args, result.to_dict())
    if result.no_answer:  # the passes are kept (--output), but the command did not find what it was asked for
        log.error("PPL-%g%%: %s", config.p, result.no_answer)
        return 3
    return status


def write_figures(args: argparse.Namespace, result) -> int:
    """The requested PNGs; 1 if any had to be saved elsewhere."""
    from sparsinglaw.report import figures

    moved_any = False
    if args.heatmap:
        detail = result.token_detail
        title = f"{args.model}: {result.metric} activation map"
        written, moved = save_with_fallback(
            lambda path: figures.token_heatmap(detail["tokens"], detail["layer_ratios"], path, title=title),
            args.heatmap, "heatmap")
        moved_any |= moved
        print_note(args, f"wrote {written}")
    if args.frequency_plot:
        written, moved = save_with_fallback(
            lambda path: figures.frequency_histogram(result.neuron_frequency, path), args.frequency_plot,
            "frequency plot")
        moved_any |= moved
        print_note(args, f"wrote {written}")
    return int(moved_any)
