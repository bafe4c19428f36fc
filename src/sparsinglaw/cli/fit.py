"""``sparsinglaw fit``: fit the sparsing laws (docs/paper.md section 3) to activation curves.

Examples::

    sparsinglaw fit 0.4b_relu.json                       # auto: all laws ranked, paper's form starred
    sparsinglaw fit curve.csv --law silu --skip-fraction 0.1 --output fit.json --plot plots/
    sparsinglaw fit run.json --law relu --predict-at 1e12 --within 0.001 --backtest 0.5
    sparsinglaw fit data/*_relu.json --law paper --scale  # A0 and dA/dD across model sizes
    sparsinglaw fit --paper 0.1b_relu                    # the paper's own curve, beside its published fit
    sparsinglaw fit --paper list                         # the packaged curves and their published fits
    sparsinglaw fit --paper all --law paper --scale      # all eleven (docs/paper.md sections 3-4)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparsinglaw.cli.common import (
    HelpFormatter,
    add_json_arg,
    add_output_arg,
    check_new_output,
    print_json,
    print_note,
    print_table,
)
from sparsinglaw.errors import ConfigError, SparsingLawError
from sparsinglaw.fileio import atomic_write_text

if TYPE_CHECKING:  # annotations only: importing these at run time would load scipy for --help
    from sparsinglaw.laws.curve import Curve
    from sparsinglaw.laws.fit import FitOptions
    from sparsinglaw.laws.results import FitReport, FitResult

# sparsinglaw.laws (scipy, numpy) is imported where it is used, so that --help answers at once. The choices
# below are spelled out for the same reason; a test checks them against the laws package.
LAW_CHOICES = ("auto", "paper", "log", "relu", "sigmoid", "silu")  # plus every registered law family
INTERVALS = ("bootstrap", "profile", "both", "none")
RANKINGS = ("aic", "bic", "mae", "mse")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fit", help="fit activation-vs-tokens laws with uncertainty",
                              description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="paper JSON, JSON records, CSV, or a results store (.sqlite file or run folder)")
    p.add_argument("--paper", action="append", default=[], metavar="NAME",
                   help="also fit the paper's measured curve NAME, shipped with the package (e.g. 0.1b_relu; "
                        "repeatable; 'all' for the eleven, 'list' to name them with their published fits)")
    p.add_argument("--law", default="auto", choices=LAW_CHOICES,
                   help="law family; auto fits all and ranks them; paper picks the activation's form")
    p.add_argument("--activation", help="activation function (relu, silu, ...) if not in the file name")
    p.add_argument("--rank-by", default="aic", choices=RANKINGS, help="ranking for --law auto")
    p.add_argument("--skip-tokens", type=float, help="drop warmup points before this many tokens")
    p.add_argument("--skip-fraction", type=float, help="drop this fraction of the first points")
    p.add_argument("--interval", default="both", choices=INTERVALS,
                   help="bootstrap (all parameters), profile (A0 and alpha), both (A0 is reported with the "
                        "hull of the two intervals), or none")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap refits")
    p.add_argument("--bootstrap", dest="boot_method", default="residual", choices=("residual", "pairs"),
                   help="residual (fixed token grid) or pairs resampling")
    p.add_argument("--level", type=float, default=0.9, help="confidence level of the intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--max-limit-width", type=float, default=0.05,
                   help="A0 interval wider than this means the limit is not identified")
    p.add_argument("--predict-at", type=float, action="append", default=[], metavar="TOKENS",
                   help="predict A at this token count (repeatable)")
    p.add_argument("--within", type=float, action="append", default=[], metavar="DIST",
                   help="tokens needed to come within DIST of A0 (repeatable)")
    p.add_argument("--backtest", type=float, metavar="FRACTION", help="fit on the first FRACTION, test on the rest")
    p.add_argument("--scale", action="store_true", help="compare A0 and dA/dD across the input models")
    add_output_arg(p, "write JSON results here", type=Path)
    add_json_arg(p)
    p.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots into this folder")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> FitOptions:
    from sparsinglaw.laws.fit import FitOptions

    return FitOptions(args.skip_tokens, args.skip_fraction, args.interval, args.n_boot, args.boot_method,
                      args.level, args.seed, args.max_limit_width)


def _paper_names(args: argparse.Namespace) -> list[str]:
    from sparsinglaw.laws.paper import paper_curve_names

    names = [n for name in args.paper for n in (paper_curve_names() if name == "all" else [name])]
    return list(dict.fromkeys(names))  # each curve once, in the order asked


def _load(args: argparse.Namespace) -> list[Curve]:
    from sparsinglaw.laws.io import read_curves
    from sparsinglaw.laws.paper import load_paper_curve

    if not args.inputs and not args.paper:
        raise ConfigError("give one or more INPUT files, or --paper NAME "
                          "(--paper list names the paper's curves)")
    curves = [c for path in args.inputs for c in read_curves(path)]
    curves += [load_paper_curve(name) for name in _paper_names(args)]
    if args.activation:
        curves = [replace(c, activation=args.activation.lower()) for c in curves]
    return curves


def fit_curve(curve: Curve, args: argparse.Namespace, opts: FitOptions) -> FitReport:
    """Fit one curve as asked by ``--law``; raises when nothing could be fitted."""
    from sparsinglaw.laws.fit import LawFitError, choose_law, fit_all, fit_law
    from sparsinglaw.laws.results import FitReport

    if args.law == "auto":
        rep = fit_all(curve, rank_by=args.rank_by, options=opts)
        if not rep.results:
            why = "; ".join(f"{k}: {v}" for k, v in rep.failures.items())
            raise LawFitError(f"{curve.name}: no law could be fitted ({why})")
        return rep
    res = fit_law(curve, choose_law(curve, args.law), opts)
    return FitReport(curve.name, args.rank_by, [res], {}, res.law if args.law == "paper" else None)


def _extras(rep: FitReport, curve: Curve, args: argparse.Namespace, opts: FitOptions) -> dict[str, Any]:
    """Predictions, reach and back-test for the report's best law; printed and returned for JSON."""
    from sparsinglaw.laws import report
    from sparsinglaw.laws.predict import backtest, predict, tokens_to_within

    best = rep.best
    out: dict[str, Any] = {}
    if best is None:
        return out
    preds = [predict(best, t) for t in args.predict_at]
    reaches = [tokens_to_within(best, e) for e in args.within] if best.family.limit(best.vector) is not None else []
    if args.within and not reaches:
        print_note(args, f"  {best.law}: no finite limit, --within skipped")
    if preds or reaches:
        print_table(args, report.prediction_lines(best.law, preds, reaches))
        out["predictions"] = [p.to_dict() for p in preds]
        out["within"] = [r.to_dict() for r in reaches]
    if args.backtest:
        # the back-test is about prediction error: profile intervals only (no bootstrap) keep it quick
        bt = backtest(curve, best.law, args.backtest, opts if opts.interval == "none" else replace(opts, interval="profile"))
        print_table(args, report.backtest_line(bt))
        out["backtest"] = bt.to_dict()
    return out


def _published(curve: Curve, args: argparse.Namespace) -> dict[str, Any]:
    """For one of the paper's curves: its published fit and that fit's error on the same points."""
    from sparsinglaw.laws.paper import paper_coefficients

    if curve.meta.get("reference") != "paper":
        return {}
    fit = paper_coefficients(curve.name)
    mae = fit.mae_on(curve)
    print_table(args, f"  published {fit.describe()}  (MAE {mae:.3e} on all {len(curve)} points; "
                      "docs/paper.md section 3; published without intervals)")
    return {"published": {**fit.to_dict(), "mae_on_points": mae}}


def _plot(curve: Curve, rep: FitReport, args: argparse.Namespace) -> None:
    from sparsinglaw.laws import plots

    ordered = [rep.best] + [r for r in rep.results if r is not rep.best]  # linearized view: best law
    print_note(args, f"  plot: {plots.plot_fit(curve, ordered, args.plot / f'{curve.name}.png')}")


def _scale(best: list[tuple[Curve, FitResult]], args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from sparsinglaw.guardrails import scale_warnings
    from sparsinglaw.laws import report
    from sparsinglaw.laws.scale import compare_limits, params_for

    for line in scale_warnings([c for c, _ in best]):  # limits of ReLU and SiLU models are not comparable
        logging.getLogger("sparsinglaw").warning(line)
    cmp = compare_limits([b for _, b in best], [params_for(b, c.meta) for c, b in best])
    print_table(args, report.scale_table(cmp))
    if args.plot:
        from sparsinglaw.laws import plots

        print_note(args, f"  plot: {plots.plot_scale(cmp, args.plot / 'scale.png')}")
    return cmp.to_dict()


def run(args: argparse.Namespace) -> int:
    """Fit every curve; a curve that cannot be fitted is reported and the exit code is non-zero."""
    from sparsinglaw.laws.fit import LawFitError

    if "list" in args.paper:
        return _list_paper(args)
    if args.output:
        check_new_output(args, args.output)
    opts = _options(args)
    curves = _load(args)
    if args.scale and len(curves) < 2:
        raise ConfigError("--scale needs at least two input curves")
    entries, best, failed = [], [], {}
    for curve in curves:
        try:
            rep = fit_curve(curve, args, opts)
        except SparsingLawError as err:
            if len(curves) == 1:
                raise
            failed[curve.name] = str(err)
            print_table(args, f"== {curve.name}\n  FAILED: {err}")
            continue
        print_table(args, _fit_table(rep))
        entries.append({**rep.to_dict(), **_published(curve, args), **_extras(rep, curve, args, opts)})
        best.append((curve, rep.best))
        if args.plot:
            _plot(curve, rep, args)
    doc: dict[str, Any] = {"curves": entries, "failed": failed}
    if args.scale and len(best) >= 2:
        doc["scale"] = _scale(best, args)
    if args.output:
        _write_json(args, doc)
    print_json(args, doc)
    if failed:
        raise LawFitError(f"{len(failed)} of {len(curves)} curves could not be fitted: {', '.join(failed)}")
    return 0


def _fit_table(rep: FitReport) -> str:
    from sparsinglaw.laws import report

    return report.fit_table(rep)


def _list_paper(args: argparse.Namespace) -> int:
    from sparsinglaw.laws.paper import paper_coefficients, paper_curve_names, paper_table

    print_table(args, paper_table())
    print_json(args, {name: paper_coefficients(name).to_dict() for name in paper_curve_names()})
    return 0


def _write_json(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    from sparsinglaw.provenance import stamp

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    atomic_write_text(args.output, json.dumps({"provenance": stamp(config), **doc}, indent=2, default=float))
    print_note(args, f"wrote {args.output}")
