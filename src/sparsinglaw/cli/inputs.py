"""``sparsinglaw inputs``: input sparsity of every projection (CETT way, TEAL uniform, TEAL greedy)."""

from __future__ import annotations

import argparse
import logging

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_data_args,
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
from sparsinglaw.progress import partial_results

log = logging.getLogger("sparsinglaw")


def register(sub) -> None:
    parser = sub.add_parser("inputs", help="input sparsity of every projection: kept shares, bytes per token, PPL-p%%",
                            formatter_class=HelpFormatter,
                            description="Measures which inputs of every projection matter, by method (cett is ours), at PPL-p% or at fixed settings.\n" + glossary("ours / TEAL / combined", "CETT", "PPL-p%"))
    add_model_args(parser)
    add_data_args(parser, max_tokens=6144)  # where the input searches converge on SmolLM2 (docs/input_sparsity.md)
    group = parser.add_argument_group("input sparsity")
    group.add_argument("--methods", default="cett,teal-uniform,teal-greedy", help="comma-separated methods")
    group.add_argument("--p", type=float, default=1.0, help="PPL-p%%: allowed perplexity increase in percent")
    group.add_argument("--fixed", action="store_true", help="evaluate --cett and --sparsity instead of PPL-p%%")
    group.add_argument("--cett", type=float, default=0.1, help="relative output error target (with --fixed)")
    group.add_argument("--sparsity", type=float, default=0.4, help="TEAL input sparsity (with --fixed)")
    group.add_argument("--kinds", default=None,
                       help="comma-separated projection kinds (q,k,v,qkv,o,gate,up,gate_up,down; default: every "
                       "projection the model's blocks have)")
    group.add_argument("--bytes-per-weight", type=float, default=4.0, help="4 for float32, 2 for fp16")
    group.add_argument("--tolerance", type=float, default=2e-3, help="trend standard error at the answer")
    group.add_argument("--max-sparse-passes", type=int, default=8, help="sparse passes per method")
    add_output_arg(parser, "write the result as JSON here (a thresholds file when it holds one method)")
    group.add_argument("--thresholds-output", metavar="PATH",
                       help="write one method's input thresholds file here (for eval, export, apply_thresholds)")
    group.add_argument("--thresholds-method", default=None,
                       help="the method --thresholds-output writes (default: the first of --methods)")
    group.add_argument("--combine-with", metavar="PATH",
                       help="output thresholds ('measure --output') to hold in --thresholds-output too: a combined file")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.inputs import InputConfig, measure_inputs

    config = InputConfig(
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()), p=None if args.fixed else args.p,
        cett=args.cett, sparsity=args.sparsity, bytes_per_weight=args.bytes_per_weight, tolerance=args.tolerance,
        max_sparse_passes=args.max_sparse_passes, batch_size=args.batch_size,
        **({"kinds": tuple(k.strip() for k in args.kinds.split(",") if k.strip())} if args.kinds else {}))
    method = _thresholds_method(args, config.methods)
    for option, path in (("--output", args.output), ("--thresholds-output", args.thresholds_output)):
        if path:
            check_new_output(args, path, option)
    output = _output_thresholds(args)
    model, tokenizer, data = load_model_and_data(args)
    if output is not None:
        from sparsinglaw.models import find_ffn_layers

        output.check_compatible(find_ffn_layers(model))
    partial_results.track()
    result = measure_inputs(model, data, config, tokenizer=tokenizer, model_name=args.model,
                            progress=not getattr(args, "quiet", False), on_method=_keeper(args))
    print_table(args, result.table())
    for m in result.methods:
        for warning in m.warnings:
            log.warning("%s: %s", m.method, warning)
    if args.output:
        print_note(args, f"wrote {result.save(args.output)}")
    if args.thresholds_output:
        from sparsinglaw.thresholds import CombinedThresholds, InputThresholds

        thresholds = InputThresholds.from_method(result, method)
        if output is not None:
            thresholds = CombinedThresholds(output=output, input=thresholds)
        written = thresholds.save(args.thresholds_output)
        print_note(args, f"wrote {method} {thresholds.kind} thresholds to {written}")
    print_json(args, result.to_dict())
    missing = [m for m in result.methods if m.no_answer]
    for m in missing:
        log.error("%s: %s", m.method, m.no_answer)
    return 3 if missing else 0


def _keeper(args: argparse.Namespace):
    """After each finished method: the methods so far written to --output (atomically), so that Ctrl-C keeps
    them and says where; without --output, the interrupt lists them (nothing is written)."""

    def keep(partial) -> None:
        names = ", ".join(m.method for m in partial.methods)
        if args.output:
            partial_results.kept("inputs", f"the finished methods ({names}) in {partial.save(args.output)}")
        else:
            lines = "; ".join(_summary(m) for m in partial.methods)
            partial_results.kept("inputs", f"nothing on disk (no --output); finished: {lines}")

    return keep


def _summary(m) -> str:
    if m.no_answer or m.solution is None:
        return f"{m.method} {'no answer' if m.no_answer else f'{m.parameter} {m.value:.4g}'}"
    return f"{m.method} {m.parameter} {m.value:.4g} (PPL ratio {m.ppl_ratio:.4f}, kept {m.kept_share:.3f})"


def _thresholds_method(args: argparse.Namespace, methods: tuple[str, ...]) -> str:
    """The method --thresholds-output writes, checked before the (slow) measurement."""
    from sparsinglaw.errors import ConfigError

    method = args.thresholds_method or methods[0]
    if method not in methods:
        raise ConfigError(f"--thresholds-method {method} is not measured; choose one of --methods ({', '.join(methods)})")
    return method


def _output_thresholds(args: argparse.Namespace):
    """The output thresholds of --combine-with (None without it), read before the (slow) measurement."""
    from sparsinglaw.errors import ConfigError

    if args.combine_with is None:
        return None
    if not args.thresholds_output:
        raise ConfigError("--combine-with needs --thresholds-output FILE, the combined file to write")
    from sparsinglaw.thresholds import Thresholds

    return Thresholds.load(args.combine_with)
