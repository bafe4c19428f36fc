"""Time a study preset end to end: wall, and the share spent training, tracking, the metric comparison,
fitting and rendering (from the study's ``timings.json``; the comparison runs in parallel with training,
so its own wall time is given beside the time the study waited for it).

    python benchmarks/bench_demo.py                     # the demo, fresh, in a temporary directory
    SPARSINGLAW_CACHE=$(mktemp -d) ./dev setup && SPARSINGLAW_CACHE=... python benchmarks/bench_demo.py
                                                        # as on a fresh machine: only setup's GGUF conversion cached
    python benchmarks/bench_demo.py --preset reproduce --out runs/reproduce   # resumable: rerun continues

Prints a Markdown table (benchmarks/RESULTS.md, section "Demo and presets") and writes it as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_preset(preset: str, out: Path, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the study and its comparison process): on a shared machine the CPU
    seconds say what the wall would be on idle cores (the two processes run side by side)."""
    import resource

    command = [sys.executable, "-m", "sparsinglaw", "study", preset, f"out_dir={json.dumps(str(out))}",
               f"threads={threads}", "base.progress=false"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - started, cpu


def summarize(out: Path, wall: float, cpu: float | None = None) -> dict:
    timings = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    stages = dict(timings.get("stages", {}))
    try:
        pretrained = json.loads((out / "pretrained.json").read_text(encoding="utf-8"))
        stages["metric comparison (own wall, parallel)"] = pretrained.get("seconds")
    except (OSError, json.JSONDecodeError):
        pass
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))  # the analysis stage's verdicts
    import tomllib

    jobs = tomllib.loads((out / "study.toml").read_text(encoding="utf-8")).get("jobs", 1)
    return {"wall": wall, "cpu_seconds": cpu, "jobs": jobs, "study_wall": timings.get("wall"), "stages": stages, "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0], "verdict": comparison["summary"],
            "checks": comparison["checks"]}


def markdown(preset: str, summary: dict) -> str:
    wall = summary["wall"]
    cpu = summary.get("cpu_seconds")
    lines = [f"`{preset}`: {wall:.0f} s wall ({summary['cpus']} CPUs, load average {summary['load_average']:.1f} "
             "at the end, " + f"{summary['jobs']} cell(s) at once)" + (f", {cpu:.0f} CPU seconds in all" if cpu else ""), "", "| stage | seconds | share of wall |", "|---|---|---|"]
    for stage, seconds in summary["stages"].items():
        if seconds is not None:  # cells side by side: their train/track seconds add up past the wall
            share = "" if "parallel" in stage or summary.get("jobs", 1) > 1 and stage in ("train", "track") else f"{seconds / wall:.0%}"
            lines.append(f"| {stage} | {seconds:.1f} | {share} |")
    lines += ["", summary["verdict"], "", "| check | found | verdict |", "|---|---|---|"]
    lines += [f"| {c['claim']} | {c['found']} | {c['verdict']} |" for c in summary["checks"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--out", help="study directory (default: a fresh temporary one)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / args.preset
        wall, cpu = run_preset(args.preset, out, args.threads)
        summary = summarize(out, wall, cpu)
    print(markdown(args.preset, summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
