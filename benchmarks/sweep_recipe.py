"""The training recipe's levers at the demo's shape: which recipe keeps ReLU and SiLU models alive.

Each variant is the demo's study (d = 64, L = 4, N = 1.9e5, 1M tokens, 16 checkpoints, tracked with the
calibrated CETT on 16,384 validation tokens) with a few base settings changed: learning rate, warmup,
init std, muP, weight decay, batch size. Per variant and activation it reports the validation loss after
1M tokens, the dead-neuron ratio (active on < 0.1% of validation tokens under the tracked thresholds,
docs/paper.md section 2) at the first checkpoint, its maximum over the second half of training and at
the last checkpoint, the activation ratio over live neurons at the last checkpoint, and, for ReLU, the
share of neurons whose gate pre-activation is never positive on the validation tokens (dead under every
threshold choice).

    python benchmarks/sweep_recipe.py run                  # train and track every variant (resumable)
    python benchmarks/sweep_recipe.py run --only lr3e-3     # some variants
    python benchmarks/sweep_recipe.py table                # the Markdown table (benchmarks/RESULTS.md)

Cells train one after another on one torch thread (``--jobs 2`` runs a variant's two cells side by side).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path("runs/sweep-recipe")

# name -> overrides of the demo study (dotted keys into the study config). The baseline is the demo as it was.
VARIANTS: dict[str, dict[str, object]] = {
    "baseline": {},
    "lr3e-3": {"base.optim.lr": 3e-3},
    "warmup0.25": {"base.optim.warmup_fraction": 0.25},
    "init0.006": {"base.model.init_std": 0.006},
    "mup": {"base.model.mup": True},
    "wd0": {"base.optim.weight_decay": 0.0},
    "batch16": {"base.batch_size": 16},
    "lr5e-3-warmup0.2": {"base.optim.lr": 5e-3, "base.optim.warmup_fraction": 0.2},
    "lr2e-3-warmup0.1": {"base.optim.lr": 2e-3, "base.optim.warmup_fraction": 0.1},
    "lr3e-3-init0.006-warmup0.1": {"base.optim.lr": 3e-3, "base.model.init_std": 0.006,
                                   "base.optim.warmup_fraction": 0.1},
    "mup-lr5e-3": {"base.model.mup": True, "base.optim.lr": 5e-3},
    "mup-lr5e-3-warmup0.2": {"base.model.mup": True, "base.optim.lr": 5e-3, "base.optim.warmup_fraction": 0.2},
    # the schedule's share: the same recipe at a constant rate after warmup (no decay)
    "lr5e-3-warmup0.2-constant": {"base.optim.lr": 5e-3, "base.optim.warmup_fraction": 0.2,
                                  "base.optim.decay_fraction": 0.0},
}


def study_config(name: str, jobs: int):
    """The demo study with the variant's overrides, no metric comparison, in ``OUT/name``."""
    from sparsinglaw.study.config import load_study

    overrides = [f"out_dir={json.dumps(str(OUT / name))}", f"jobs={jobs}", "threads=1", 'fit.pretrained=""',
                 "base.progress=false"]
    overrides += [f"{key}={json.dumps(value)}" for key, value in VARIANTS[name].items()]
    shared = OUT / "baseline" / "tokenizer"
    if name != "baseline" and (shared / "tokenizer_config.json").is_file():  # one tokenizer for all variants
        overrides.append(f"base.tokenizer.path={json.dumps(str(shared.resolve()))}")
    return load_study("demo", overrides)


def run(names: list[str], jobs: int) -> None:
    from sparsinglaw.study.runner import run_cells

    for name in names:
        print(f"== {name}: {VARIANTS[name] or 'the demo recipe'}", flush=True)
        run_cells(study_config(name, jobs))


def never_positive_share(run_dir: Path, checkpoint: Path, max_tokens: int) -> float:
    """Share of FFN neurons whose activation s = act(W_gate x) is zero on every validation token: for ReLU,
    the gate pre-activation is never positive (dead whatever the threshold)."""
    import torch

    from sparsinglaw.measure import MeasureConfig, Measurement
    from sparsinglaw.track.tracker import load_checkpoint, validation_data

    m = Measurement(load_checkpoint(checkpoint), validation_data(run_dir, max_tokens), MeasureConfig(batch_size=16))
    with torch.no_grad():
        m.dense(cett_curves=False)
    freqs = torch.cat(m.dense_zero.neuron_frequency())
    return float((freqs == 0).double().mean())


def cell_row(name: str, cell) -> dict:
    """What the table shows of one cell (its store's rows, plus the never-positive share for ReLU)."""
    from sparsinglaw.store.runs import complete_checkpoints

    dead = dict(cell.dead)
    tokens = sorted(dead)
    second_half = [dead[t] for t in tokens if t > cell.tokens_budget / 2]
    last = tokens[-1]
    activation = dict(cell.points)[last]
    row = {"variant": name, "activation": cell.activation, "loss": cell.final_loss, "dead_first": dead[tokens[0]],
           "dead_second_half_max": max(second_half), "dead_last": dead[last], "ratio_last": activation,
           # dead neurons are active on < 0.1% of tokens, so over live ones the ratio is A / (1 - dead)
           # to within 0.001 * dead / (1 - dead)
           "live_ratio_last": activation / (1 - dead[last]) if dead[last] < 1 else float("nan"),
           "never_positive_first": None, "never_positive_last": None}
    if cell.activation == "relu":
        checkpoints = complete_checkpoints(cell.run_dir)
        for key, info in (("never_positive_first", checkpoints[0]), ("never_positive_last", checkpoints[-1])):
            row[key] = never_positive_share(cell.run_dir, Path(info["path"]), 16_384)
    return row


def table(names: list[str]) -> str:
    from sparsinglaw.study.collect import collect

    rows = []
    for name in names:
        if not (OUT / name / "study.toml").is_file():
            continue
        try:
            cells, _ = collect(OUT / name)
        except Exception as err:  # a variant still running: say so, show the rest
            print(f"{name}: not ready ({err})", file=sys.stderr)
            continue
        rows += [cell_row(name, c) for c in cells if c.dead]
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| variant | act | val loss | dead @65k | dead max 2nd half | dead last | act. ratio last | "
             "live ratio last | never positive @65k / last |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        never = "" if r["never_positive_first"] is None else f"{r['never_positive_first']:.3f} / {r['never_positive_last']:.3f}"
        lines.append(f"| {r['variant']} | {r['activation']} | {fmt(r['loss'])} | {fmt(r['dead_first'])} | "
                     f"{fmt(r['dead_second_half_max'])} | {fmt(r['dead_last'])} | {fmt(r['ratio_last'])} | "
                     f"{fmt(r['live_ratio_last'])} | {never} |")
    (OUT / "table.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["run", "table"])
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="variants (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="cells of a variant side by side")
    args = parser.parse_args(argv)
    names = args.only or list(VARIANTS)
    if args.what == "run":
        run(names, args.jobs)
    else:
        print(table(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
