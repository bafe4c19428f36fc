"""``sparsinglaw demo``: the main job, a whole study in about 5 minutes on 2 CPU cores.

A ReLU and a SiLU model trained on 1M tokens, tracked with the calibrated CETT, the paper's laws fitted, and
the metric comparison on SmolLM2-135M; the report is ``runs/demo/report/index.html``. It is the ``demo``
study preset; rerunning resumes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sparsinglaw.cli.common import HelpFormatter, add_json_arg, add_output_arg, print_json, print_table


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the main job: a ReLU/SiLU study and the metric comparison (about 5 minutes)",
                            formatter_class=HelpFormatter)
    add_output_arg(parser, "output directory (the study, its runs and the report; resumed in place)", old=("--out",),
                   overwrite=None,
                   default="runs/demo")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the models are tiny: one thread is as fast and shares the cores)")
    parser.add_argument("--force", action="store_true", help="reuse an output directory made with another config")
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from sparsinglaw.study.config import load_study
    from sparsinglaw.study.runner import run_study

    started = time.perf_counter()
    cfg = load_study("demo", [f"out_dir={json.dumps(args.output)}", f"threads={args.threads}"])
    summary = run_study(cfg, force=args.force)
    report = Path(summary["report"])
    analysis = json.loads((report.parent / "analysis.json").read_text(encoding="utf-8"))
    seconds = time.perf_counter() - started
    print_table(args, summary_text(analysis, summary, report, seconds))
    print_json(args, {"summary": summary, "report": str(report.resolve()), "seconds": round(seconds, 1),
                      "paper": analysis["paper"], "pretrained": analysis.get("pretrained")})
    return 0


def summary_text(analysis: dict, summary: dict, report: Path, seconds: float) -> str:
    """The verdicts (each with what was found, its interval), the pretrained model's PPL-p%, where the report is."""
    lines = ["", verdict_table(analysis["paper"])]
    if analysis.get("pretrained"):
        sol = analysis["pretrained"]["pplp"]
        lines.append(f"  SmolLM2-135M, PPL-{sol['p']:g}%: activation ratio {sol['activation_ratio']:.3f} at CETT "
                     f"{sol['cett']:.3f} ({analysis['pretrained']['tokens']:,} tokens; no interval: the "
                     "comparison runs without the bootstrap)")
    lines.append(f"demo finished in {seconds:.0f} s ({summary['run']} cells trained, {summary['skipped']} already done)")
    lines.append(f"report: {report.resolve()}  (open it in a browser; figures as PNG + CSV beside it)")
    return "\n".join(lines)


def verdict_table(comparison: dict) -> str:
    """The checks against the paper as an aligned table (verdict, claim, the paper's, what was found with its
    interval), after their one-sentence summary; ``comparison``: comparison.json or analysis.json's "paper"."""
    from sparsinglaw.tables import aligned_table

    rows = [[c["verdict"], c["claim"], c["paper"], c["found"]] for c in comparison.get("checks", [])]
    table = aligned_table(["verdict", "claim", "paper", "found (interval)"], rows, align="llll") if rows else ""
    inputs = verdict_table(comparison["inputs"]) if comparison.get("inputs") else ""  # the input-sparsity checks
    return "\n".join(line for line in (comparison.get("summary", ""), table, inputs) if line)
