"""``sparsinglaw eval``: lm-eval scores of a model dense and under fixed thresholds, side by side."""

from __future__ import annotations

import argparse
import json
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

log = logging.getLogger("sparsinglaw")


def register(sub) -> None:
    parser = sub.add_parser(
        "eval", help="lm-eval tasks on the dense and the thresholded model, side by side",
        formatter_class=HelpFormatter,
        description="Runs lm-evaluation-harness twice on the same loaded model with the same settings: dense, "
                    "then with the thresholds applied; prints score per task and metric, the difference and the "
                    "activation ratio measured during the sparse evaluation.",
    )
    add_model_args(parser)
    parser.add_argument("--thresholds", required=True,
                        help="thresholds file (output, input or combined kind) or a 'sparsinglaw measure --output' result")
    group = parser.add_argument_group("lm-eval")
    group.add_argument("--tasks", required=True,
                       help="comma-separated lm-eval task or group names; sparsinglaw_mc is a 100-item "
                            "multiple-choice task shipped with the package (runs offline)")
    group.add_argument("--include-path", action="append", help="directory of local task YAML (repeatable)")
    group.add_argument("--limit", type=float, default=None, help="examples per task (a fraction if < 1)")
    group.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples per prompt (default: the task's)")
    group.add_argument("--batch-size", default="1",
                       help="lm-eval batch size; >1 also counts right-padding positions in the activation ratio")
    group.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of lm-eval's stderr (0: none)")
    add_deprecated_alias(group, "--bootstrap-iters", "--n-boot", "n_boot", type=int)
    group.add_argument("--apply-chat-template", action="store_true", help="wrap prompts in the tokenizer's chat template")
    group.add_argument("--seed", type=int, default=0, help="random, numpy, torch and few-shot seeds")
    group.add_argument("--lm-eval-args", default="",
                       help="more lm_eval.simple_evaluate arguments, 'key=value,key=value' (e.g. use_cache=/tmp/c)")
    group.add_argument("--hflm-args", default="", help="HFLM arguments, 'key=value,...' (e.g. max_length=2048)")
    parser.add_argument("--sparse-compute", action="store_true",
                        help="compute the thresholded model with sparsinglaw.sparse's modules instead of masking "
                             "hooks (same scores): sparse FFNs for output thresholds, input-sparse projections "
                             "(all seven per block) for input and combined ones; decode steps run sparsely")
    add_deprecated_alias(parser, "--sparse-ffn", "--sparse-compute", "sparse_compute", flag=True)
    add_output_arg(parser, "write the report (and lm-eval's results) as JSON here")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def parse_kv(text: str, option: str) -> dict:
    """'a=1,b=x' -> {"a": 1, "b": "x"} with lm-eval's own value parsing."""
    if not text.strip():
        return {}
    from lm_eval.utils import simple_parse_args_string

    if any("=" not in part for part in text.split(",") if part.strip()):
        raise ConfigError(f"{option} takes 'key=value,key=value', got {text!r}")
    return simple_parse_args_string(text)


def lm_eval_kwargs(args: argparse.Namespace) -> dict:
    seed = args.seed
    kwargs = {
        "limit": int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit,
        "num_fewshot": args.num_fewshot, "bootstrap_iters": args.n_boot,
        "apply_chat_template": args.apply_chat_template, "random_seed": seed, "numpy_random_seed": seed,
        "torch_random_seed": seed, "fewshot_random_seed": seed,
    }
    kwargs.update(parse_kv(args.lm_eval_args, "--lm-eval-args"))
    return kwargs


def _batch_size(text: str):
    if text.startswith("auto"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--batch-size must be an integer or 'auto', got {text!r}") from None
    if value < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.cli.output_paths import save_with_fallback
    from sparsinglaw.evaluate import _require_lm_eval, check_lm_eval_kwargs, evaluate_dense_and_sparse
    from sparsinglaw.fileio import atomic_write_text
    from sparsinglaw.thresholds import load_thresholds

    _require_lm_eval()
    thresholds = load_thresholds(args.thresholds)  # fail on a bad file before the slow model load
    kwargs, batch_size = lm_eval_kwargs(args), _batch_size(args.batch_size)
    check_lm_eval_kwargs(kwargs)
    if args.output:
        check_new_output(args, args.output)
    hflm = parse_kv(args.hflm_args, "--hflm-args")
    model, tokenizer = load_model_from_args(args)
    report = evaluate_dense_and_sparse(
        model, tokenizer, thresholds, args.tasks, include_path=args.include_path, batch_size=batch_size,
        hflm_kwargs=hflm, model_name=args.model, sparse_modules=args.sparse_compute, **kwargs,
    )
    print_table(args, report.table())
    for line in report.noise_warnings():
        log.warning(line)
    moved = False
    if args.output:
        text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
        written, moved = save_with_fallback(lambda path: atomic_write_text(path, text), args.output, "report")
        print_note(args, f"wrote {written}")
    print_json(args, report.to_dict())
    return int(moved)
