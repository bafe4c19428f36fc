"""``sparsinglaw demo``: the main job on built-in defaults, a whole study in a few minutes on 2 CPU cores.

Tiny ReLU and SiLU models at two scales and a ReLU width-depth pair are trained on the built-in corpus,
tracked (PPL-1% at every checkpoint), fitted and reported: ``runs/demo/report/index.html``. It is the
``demo`` study preset (``sparsinglaw study demo`` runs the same); stopping and rerunning it resumes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the main job on the built-in defaults (a tiny study, minutes)",
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
    print(f"demo finished in {time.perf_counter() - started:.0f} s ({summary['run']} cells trained, "
          f"{summary['skipped']} already done)")
    print(f"report: {report.resolve()}  (open it in a browser; figures as PNG + CSV beside it)")
    return 0
