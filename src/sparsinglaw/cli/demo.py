"""``sparsinglaw demo``: the main job, a whole study in about 5 minutes on 2 CPU cores.

A ReLU and a SiLU model (d = 64, L = 4, vocabulary 2,048) are trained on 1M tokens of the shipped English
corpus, every checkpoint is tracked with the calibrated CETT on 16,384 validation tokens (each value with
its 90% interval), the paper's laws are fitted, and the metric comparison (Top-k, FAT-eps, CETT) runs on
the real SmolLM2-135M beside the training, on the second core. The report, ``runs/demo/report/index.html``,
shows the verdicts with their intervals and the paper's published curves beside the live ones. It is the
``demo`` study preset (``sparsinglaw study demo`` runs the same); stopping and rerunning it resumes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the main job: a ReLU/SiLU study and the metric comparison (about 5 minutes)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the models are tiny: one thread is as fast and shares the cores)")
    parser.add_argument("--force", action="store_true", help="reuse an out directory made with another config")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from sparsinglaw.study.config import load_study
    from sparsinglaw.study.runner import run_study

    started = time.perf_counter()
    cfg = load_study("demo", [f"out_dir={json.dumps(args.out)}", f"threads={args.threads}"])
    summary = run_study(cfg, force=args.force)
    report = Path(summary["report"])
    analysis = json.loads((report.parent / "analysis.json").read_text(encoding="utf-8"))
    print(f"\n{analysis['paper']['summary']}")
    for check in analysis["paper"]["checks"]:  # each verdict with what was found (its interval)
        print(f"  {check['verdict']:>12}  {check['claim']}: {check['found']}")
    if analysis.get("pretrained"):
        sol = analysis["pretrained"]["pplp"]
        print(f"  SmolLM2-135M, PPL-{sol['p']:g}%: activation ratio {sol['activation_ratio']:.3f} at CETT "
              f"{sol['cett']:.3f} ({analysis['pretrained']['tokens']:,} tokens)")
    print(f"demo finished in {time.perf_counter() - started:.0f} s ({summary['run']} cells trained, "
          f"{summary['skipped']} already done)")
    print(f"report: {report.resolve()}  (open it in a browser; figures as PNG + CSV beside it)")
    return 0
