"""Training throughput of ``sparsinglaw train`` (the transformers Trainer wiring) versus a plain PyTorch loop.

Both train the same model (same seed, same initial weights) on the same packed data in the same order, with
the same optimizer (torch AdamW, the Trainer's weight-decay groups), warmup-stable-decay schedule and gradient
clipping, for the same number of steps, in this one process. The headline ratio (target >= 0.9x) is the
steady state, from the end of the first step to the end of the last; the whole-run ratio also counts the
Trainer's startup and its one checkpoint at the end (costs a real run pays once per K tokens), which a
30-step benchmark magnifies. Both paths must reach the same loss (so the comparison is like for like).

    .venv/bin/python benchmarks/bench_train.py [--steps 30] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch


def bench_config(run_dir: Path, steps: int):
    from sparsinglaw.train import TrainConfig, load_config

    seq_len, batch = 128, 8
    budget = steps * seq_len * batch
    cfg = load_config("tiny", [
        f"run_dir={run_dir}", f"seq_len={seq_len}", f"batch_size={batch}", f"token_budget={budget}",
        f"checkpoint_every_tokens={budget}", "data.max_documents=none", "data.validation_tokens=0",
        "model.hidden_size=128", "model.num_layers=4", "model.head_dim=32", "tokenizer.vocab_size=2048",
        "progress=false", "tensorboard=false", f"log_every_steps={steps}",
    ])
    return TrainConfig.from_dict(cfg.to_dict())


def steady_rate(step_ends: list[float], tokens_per_step: int) -> float:
    """tokens/s between the end of the first step and the end of the last (startup and saving excluded)."""
    return (len(step_ends) - 1) * tokens_per_step / (step_ends[-1] - step_ends[0])


def run_trainer(cfg) -> dict:
    """Throughput and final logged loss of the Trainer path; data and tokenizer are prepared before timing."""
    from transformers import TrainerCallback

    from sparsinglaw.train.trainer import build_trainer, prepare

    step_ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    prep = prepare(cfg)
    trainer = build_trainer(prep)
    trainer.add_callback(Clock())
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    tokens = trainer.state.global_step * cfg.tokens_per_step()
    return {"whole": tokens / seconds, "steady": steady_rate(step_ends, cfg.tokens_per_step()),
            "loss": trainer.recorder.train_loss}


def plain_loop(cfg) -> dict:
    """Throughput and mean loss over the last logging window of a hand-written loop, same model and data."""
    from torch.utils.data import DataLoader
    from transformers import Trainer, default_data_collator
    from transformers.optimization import get_wsd_schedule

    from sparsinglaw.train.data import OrderedTrainData
    from sparsinglaw.train.trainer import new_model, prepare, schedule_steps

    prep = prepare(cfg)
    model = new_model(prep)
    model.train()
    steps = cfg.total_steps()
    data = OrderedTrainData(prep.train_sequences, steps * cfg.batch_size, cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=False, collate_fn=default_data_collator)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    groups = [
        {"params": [p for n, p in model.named_parameters() if n in decay], "weight_decay": cfg.optim.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps)
    phases = schedule_steps(cfg, steps)
    sched = get_wsd_schedule(opt, phases["warmup"], phases["decay"], num_training_steps=steps,
                             decay_type=cfg.optim.decay_type, min_lr_ratio=cfg.optim.min_lr_ratio)
    losses, step_ends = [], []
    started = time.perf_counter()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step_ends.append(time.perf_counter())
    seconds = time.perf_counter() - started
    return {"whole": steps * cfg.tokens_per_step() / seconds, "steady": steady_rate(step_ends, cfg.tokens_per_step()),
            "loss": statistics.fmean(losses[-cfg.log_every_steps:])}


def tracking_share(cache: Path, run_dir: Path, steps: int) -> dict:
    """Share of a run's wall time spent measuring PPL-p% at its checkpoints (3 checkpoints, 4096 tokens each)."""
    from sparsinglaw.train import TrainConfig, train

    run_dir.mkdir()
    for part in ("tokenizer", "data"):
        shutil.copytree(cache / part, run_dir / part)
    base = bench_config(run_dir, steps).to_dict()
    base.update(checkpoint_every_tokens=base["token_budget"] // 3, track={"mode": "pplp", "max_tokens": 4096})
    base["data"]["validation_tokens"] = 4096
    outcome = train(TrainConfig.from_dict(base))
    return {"tracking_seconds": round(outcome.hook_seconds, 2), "run_seconds": round(outcome.seconds, 2),
            "tracking_share": round(outcome.hook_seconds / outcome.seconds, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the two paths this many times")
    parser.add_argument("--no-tracking", action="store_true", help="skip the tracking-share measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trainer_runs, plain_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "prepared"  # tokenizer and packed data, built once and copied per trainer run
        cfg = bench_config(cache, args.steps)
        for repeat in range(args.repeats):  # alternate, so load from other users hits both alike
            plain_runs.append(plain_loop(cfg))
            run_dir = Path(tmp) / f"trainer-{repeat}"
            run_dir.mkdir()
            for part in ("tokenizer", "data"):
                shutil.copytree(cache / part, run_dir / part)
            trainer_runs.append(run_trainer(bench_config(run_dir, args.steps)))
        tracking = None if args.no_tracking else tracking_share(cache, Path(tmp) / "tracked", args.steps)
    best = {kind: {path: max(r[kind] for r in runs) for path, runs in (("trainer", trainer_runs), ("plain", plain_runs))}
            for kind in ("steady", "whole")}
    result = {
        "steps": args.steps, "tokens_per_step": cfg.tokens_per_step(), "threads": args.threads,
        "steady_tokens_per_s": {k: round(v, 1) for k, v in best["steady"].items()},
        "whole_run_tokens_per_s": {k: round(v, 1) for k, v in best["whole"].items()},
        # Paired ratios (each trainer run against the plain run just before it) resist load from other users
        # of the machine better than a ratio of bests; the headline is their median.
        "ratio": round(statistics.median(t["steady"] / p["steady"] for t, p in zip(trainer_runs, plain_runs)), 3),
        "paired_ratios": [round(t["steady"] / p["steady"], 3) for t, p in zip(trainer_runs, plain_runs)],
        "ratio_of_bests": round(best["steady"]["trainer"] / best["steady"]["plain"], 3),
        "ratio_whole_run": round(best["whole"]["trainer"] / best["whole"]["plain"], 3),
        "final_loss_trainer": trainer_runs[-1]["loss"], "final_loss_plain": plain_runs[-1]["loss"],
        "same_loss": math.isclose(trainer_runs[-1]["loss"], plain_runs[-1]["loss"], rel_tol=1e-3),
        "tracking": tracking,
    }
    print(json.dumps(result, indent=2))
    print(f"sparsinglaw train / plain loop = {result['ratio']:.3f}x steady state (target >= 0.9x), "
          f"{result['ratio_whole_run']:.3f}x including startup and the final checkpoint")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
