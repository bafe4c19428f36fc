"""``sparsinglaw track RUN_DIR [options] [key=value ...]``: measure sparsity at every checkpoint of a
finished or running training run.

Options and ``key=value`` overrides set ``TrackSettings`` fields. ``cett-calibrated`` (default) calibrates
one CETT on the last K checkpoints and re-measures all; ``--mode pplp`` solves PPL-p% per checkpoint;
``--input-sparsity`` adds input sparsity. Results go to ``RUN_DIR/results.sqlite`` (``--output``: CSV/JSON)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_output_arg,
    aligned_table,
    check_new_output,
    format_estimate,
    format_number,
    key_value_table,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.errors import ConfigError, DataError
from sparsinglaw.track.settings import TRACK_MODES, TrackSettings  # light: no torch

DEFAULTS = TrackSettings()
# The options named after the TrackSettings field they set (--cold-start sets warm_start=False).
OPTION_FIELDS = ("mode", "p", "calibrate_last", "max_tokens", "batch_size", "input_sparsity")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "track", help="measure sparsity across a training run's checkpoints",
        description="Measure one calibrated CETT (fitted on the last K checkpoints) or PPL-p% (per checkpoint) "
                    "on every complete checkpoint of RUN_DIR, on the run's validation split.",
        formatter_class=HelpFormatter,
        epilog="examples:\n  sparsinglaw track runs/tiny\n  sparsinglaw track runs/tiny --mode pplp --p 0.5\n"
               "  sparsinglaw track runs/tiny tolerance=1e-4 --output track.csv",
    )
    parser.add_argument("run_dir", help="a directory written by `sparsinglaw train`")
    _add_options(parser)
    # REMAINDER keeps options given after RUN_DIR or among the overrides; run() parses what it holds.
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                        help=f"override tracking settings ({', '.join(DEFAULTS.to_dict())})")
    parser.set_defaults(func=run, track_parser=parser)  # the parser: for --help given after RUN_DIR


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", default=DEFAULTS.mode, choices=TRACK_MODES,
                        help="one CETT calibrated on the last K checkpoints, or PPL-p%% solved per checkpoint")
    parser.add_argument("--p", type=float, default=DEFAULTS.p, help="allowed perplexity increase in percent")
    parser.add_argument("--calibrate-last", type=int, default=DEFAULTS.calibrate_last,
                        help="K for --mode cett-calibrated")
    parser.add_argument("--max-tokens", type=int, default=DEFAULTS.max_tokens,
                        help="validation tokens per measurement")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="sequences per forward pass")
    parser.add_argument("--input-sparsity", action="store_true", default=DEFAULTS.input_sparsity,
                        help="also record the kept share of every projection's inputs (the input CETT, in the same "
                             "mode) and the weight bytes read per token")
    parser.add_argument("--cold-start", action="store_true", default=not DEFAULTS.warm_start,
                        help="start every PPL-p%% search at the default CETT instead of the nearest measured "
                             "checkpoint's solution")
    add_output_arg(parser, "also write all results of the run to this .csv or .json file", old=("--export",))
    add_json_arg(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


class _LateParser(argparse.ArgumentParser):
    """Parses the options found among the overrides; a mistake is one ``ConfigError`` line, not a usage dump."""

    def error(self, message: str):
        hint = "; overrides look like key=value" if message.startswith("unrecognized") else ""
        raise ConfigError(f"track: {message}{hint}")


def _split_remainder(args: argparse.Namespace) -> argparse.Namespace:
    """Options after RUN_DIR (``RUN_DIR --mode pplp p=0.5``) join those before it; the rest are overrides.
    A deprecated spelling found here is logged here (``main`` logged those before RUN_DIR)."""
    if {"-h", "--help"} & set(args.overrides):
        args.track_parser.print_help()
        raise SystemExit(0)
    seen = len(getattr(args, "deprecations", None) or [])
    late = _LateParser(prog="sparsinglaw track", add_help=False)
    _add_options(late)
    late.add_argument("overrides", nargs="*", default=[])
    namespace = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "overrides"})
    parsed = late.parse_intermixed_args(args.overrides, namespace=namespace)
    for note in (getattr(parsed, "deprecations", None) or [])[seen:]:
        logging.getLogger("sparsinglaw").warning(note)
    return parsed


def settings_from_args(args: argparse.Namespace) -> TrackSettings:
    """The options laid over ``TrackSettings``' defaults, then the ``key=value`` overrides (``Config.merge``)."""
    values = {name: getattr(args, name) for name in OPTION_FIELDS}
    settings = TrackSettings(**{**DEFAULTS.to_dict(), **values, "warm_start": not args.cold_start})
    return settings.merge(list(args.overrides)) if args.overrides else settings


def run(args: argparse.Namespace) -> int:
    from sparsinglaw.cli.common import set_threads
    from sparsinglaw.cli.output_paths import save_with_fallback
    from sparsinglaw.store.database import ResultsStore, opens_read_only
    from sparsinglaw.track.tracker import track

    args = _split_remainder(args)
    settings = settings_from_args(args)
    set_threads(args)
    if args.output:
        check_new_output(args, args.output)
    if opens_read_only(args.run_dir):  # before minutes of measuring whose rows could not be stored
        raise DataError(f"{args.run_dir} is read-only: track records its measurements there; copy the run "
                        f"(cp -r {args.run_dir} COPY) and track COPY, or read its results with "
                        f"sparsinglaw fit {args.run_dir}")
    # under torchrun: every process measures its share of the validation batches (sums all-reduced), the
    # first one writes the rows and prints
    from sparsinglaw.distributed import close_process_group, init_from_env
    from sparsinglaw.progress import partial_results

    rank, _ = init_from_env()
    partial_results.track()  # each stored checkpoint is noted (track.tracker), so Ctrl-C says what was kept where
    try:
        summary = track(args.run_dir, settings)
    finally:
        close_process_group()
    if rank != 0:
        return 0
    store = ResultsStore(args.run_dir)
    rows = store.measurements(metric=settings.metric, setting=settings.setting(), with_result=True)
    inputs = input_rows(store, settings) if settings.input_sparsity else None
    print_table(args, measurements_table(rows, summary, inputs))
    moved = False
    if args.output:
        write = store.export_csv if Path(args.output).suffix == ".csv" else store.export_json
        written, moved = save_with_fallback(write, args.output, "export")
        print_note(args, f"wrote {written}")
    measurements = [{**{k: v for k, v in r.items() if k not in ("result", "provenance")},
                     "interval": (r.get("result") or {}).get("interval")} for r in rows]
    document = {"settings": settings.to_dict(), "summary": summary, "measurements": measurements}
    if inputs is not None:
        document["inputs"] = inputs
    print_json(args, document)
    return int(moved)


def input_rows(store, settings: TrackSettings) -> list[dict]:
    """Per checkpoint: the kept share of projection inputs and the weight bytes ratio (both metrics joined)."""
    kept_metric, bytes_metric = settings.input_metrics
    used = {(r["run_id"], r["checkpoint"]): r["value"]
            for r in store.measurements(metric=bytes_metric, setting=settings.setting())}
    return [{"run_id": r["run_id"], "checkpoint": r["checkpoint"], "tokens": r["tokens"], "kept_share": r["value"],
             "bytes_ratio": used.get((r["run_id"], r["checkpoint"]))}
            for r in store.measurements(metric=kept_metric, setting=settings.setting())]


def measurements_table(rows: list[dict], summary: dict, inputs: list[dict] | None = None) -> str:
    """One line per checkpoint measured: activation and PPL ratios, each rounded to the precision of its
    interval and shown with it (with the input kept share and bytes ratio when tracked), then the tracking
    summary (its nested details, such as the calibration's, are in --json)."""
    by_checkpoint = {(r["run_id"], r["checkpoint"]): r for r in inputs or []}
    level = next((r["result"]["interval"]["level"] for r in rows if _interval(r, "activation_ratio")), 0.9)
    header = ["checkpoint", "tokens", "activation ratio", f"{level:.0%} interval", "PPL ratio", f"{level:.0%} interval"]
    if inputs is not None:
        header += ["input kept", "bytes"]
    body = []
    for row in rows:
        line = [row["checkpoint"], f"{row['tokens']:,}",
                *format_estimate(row["activation_ratio"], _interval(row, "activation_ratio")),
                *format_estimate((row.get("result") or {}).get("ppl_ratio"), _interval(row, "ppl_ratio"))]
        if inputs is not None:
            got = by_checkpoint.get((row["run_id"], row["checkpoint"]), {})
            line += [got.get("kept_share"), got.get("bytes_ratio")]
        body.append(line)
    lines = [aligned_table(header, body), key_value_table(_summary_lines(summary))]
    if summary.get("inputs"):
        lines.append("input sparsity: " + ", ".join(f"{k} {format_number(v)}" for k, v in summary["inputs"].items()
                                                    if not isinstance(v, dict)))
    return "\n".join(lines)


def _interval(row: dict, key: str) -> tuple[float, float] | None:
    interval = ((row.get("result") or {}).get("interval") or {}).get(key)
    return tuple(interval) if isinstance(interval, list | tuple) and len(interval) == 2 else None


def _summary_lines(summary: dict) -> dict:
    """The summary's flat values; the calibrated CETT with the standard error of its PPL-ratio trend (the
    calibration gives no interval on c itself, so none is shown)."""
    flat = {k: v for k, v in summary.items() if k != "inputs"}
    calibration = summary.get("calibration") or {}
    if flat.get("cett") is not None and calibration.get("standard_error") is not None:
        flat["cett"] = (f"{flat['cett']:.4g} (PPL-ratio trend standard error {calibration['standard_error']:.2g} "
                        "there; no interval on c)")
    return flat


def main(argv: list[str] | None = None) -> int:
    """``python -m sparsinglaw.cli.track`` (e.g. under torchrun): the same as ``sparsinglaw track``."""
    import sys

    from sparsinglaw.cli import main as cli_main

    return cli_main(["track", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
