"""Training throughput of ``sparsinglaw train``: today's step against the fused one, and the Trainer against a
plain PyTorch loop, at the demo's shape or the reproduce preset's shapes (study.config).

Paths, all training the same model (same seed, same initial weights) on the same packed data in the same
order, run one after the other in each repeat (interleaved, so load from other users hits all alike):

- ``plain``: a hand-written loop over the model's own forward (torch AdamW with the Trainer's weight-decay
  groups, the same warmup-stable-decay schedule and gradient clipping);
- ``today``: the Trainer with the model's own forward (``fused_loss=false``), the path before train.fastpath;
- ``fused``: the Trainer with the chunked cross-entropy over the output head (``fused_loss=true``, the default);
- ``compiled``: ``fused`` under torch.compile (``compile=true``); its compile time is reported and counted
  against a 1M-token run (``per_1M_tokens``: the steady rate with the first repeat's extra first-step time,
  a cold compile, added once per 1,048,576 tokens).

The headline ratios are medians of paired ratios (each path against ``today`` of the same repeat) of the
steady rate, from the end of the first step to the end of the last. Every path must reach the same loss
(float noise only), so the comparison is like for like. On a machine whose load changes within seconds,
``--step-pairs`` interleaves single optimizer steps of today / fused / compiled instead (no Trainer; the
Trainer's own per-step work is the same on every path), the finest pairing there is, each step timed by the
process's CPU time (one thread), which other users' time slices do not stretch.

    .venv/bin/python benchmarks/bench_train.py [--shapes demo|reproduce] [--paths today,fused,compiled,plain]
        [--steps 16] [--repeats 3] [--threads 1] [--batch-size 8] [--seq-len 256] [--step-pairs]
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

from sparsinglaw.study.config import RECIPE

# (d, L) of the presets' models (head_dim 16, vocabulary 2,048; study.config demo_preset / reproduce_preset)
SHAPES = {"demo": [(64, 4)], "reproduce": [(32, 10), (48, 6), (64, 4), (96, 3), (96, 6)]}
TRAINER_PATHS = {"today": ["fused_loss=false"], "fused": ["fused_loss=true"], "compiled": ["compile=true"]}
PER_RUN_TOKENS = 1_048_576  # the demo's budget per cell, to count compile time against


# the presets' measured recipe (muP, learning rate, schedule) as key=value overrides
RECIPE_OVERRIDES = [f"{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
                    for section, values in RECIPE.items() for key, value in values.items()]


def bench_config(run_dir: Path, steps: int, shape=(64, 4), batch: int = 8, seq_len: int = 256, extra=()):
    from sparsinglaw.train import TrainConfig, load_config

    budget = steps * seq_len * batch
    cfg = load_config("tiny", [
        f"run_dir={run_dir}", f"seq_len={seq_len}", f"batch_size={batch}", f"token_budget={budget}",
        f"checkpoint_every_tokens={budget}", "data.max_documents=none", "data.validation_tokens=0",
        f"model.hidden_size={shape[0]}", f"model.num_layers={shape[1]}", "model.head_dim=16",
        "tokenizer.vocab_size=2048", "progress=false", "tensorboard=false", f"log_every_steps={steps}",
        *RECIPE_OVERRIDES, *extra,
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
            "first_step": step_ends[0] - started, "loss": trainer.recorder.train_loss}


def plain_loop(cfg) -> dict:
    """Throughput and mean loss over the last logging window of a hand-written loop, same model and data."""
    from torch.utils.data import DataLoader
    from transformers import Trainer, default_data_collator
    from transformers.optimization import get_wsd_schedule

    from sparsinglaw.train.data import OrderedTrainData
    from sparsinglaw.train.trainer import new_model, prepare, schedule_steps

    prep = prepare(cfg)
    model = new_model(prep, fast=False)  # the model's own forward, as before train.fastpath
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
            "first_step": step_ends[0] - started, "loss": statistics.fmean(losses[-cfg.log_every_steps:])}


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


def run_path(path: str, cache: Path, tmp: Path, args, shape, repeat: int) -> dict:
    """One timed run of ``path`` (a fresh run dir holding copies of the prepared tokenizer and data)."""
    make = lambda run_dir, extra=(): bench_config(run_dir, args.steps, shape, args.batch_size, args.seq_len,  # noqa: E731
                                                  extra)
    if path == "plain":
        return plain_loop(make(cache))
    run_dir = tmp / f"{path}-{shape[0]}x{shape[1]}-{repeat}"
    run_dir.mkdir()
    for part in ("tokenizer", "data"):
        shutil.copytree(cache / part, run_dir / part)
    return run_trainer(make(run_dir, TRAINER_PATHS[path]))


def summarise(runs: dict[str, list[dict]], tokens_per_step: int) -> dict:
    """Median steady rate per path, paired ratios against ``today``, compile time and the rate it leaves over
    a 1M-token run, and whether every path reached today's loss."""
    out = {}
    for path, results in runs.items():
        steady = statistics.median(r["steady"] for r in results)
        # time of the first step beyond an ordinary one: compiling (compiled path), warm-up (the others). The
        # first repeat's is the cold cost a fresh run pays; later repeats reuse torch.compile's caches.
        extra = [r["first_step"] - tokens_per_step / r["steady"] for r in results]
        row = {"steady_tokens_per_s": round(steady, 1), "first_step_extra_s": [round(x, 2) for x in extra],
               "per_1M_tokens": round(PER_RUN_TOKENS / (PER_RUN_TOKENS / steady + max(extra[0], 0.0)), 1),
               "final_loss": results[-1]["loss"]}
        if "today" in runs:
            pairs = [r["steady"] / t["steady"] for r, t in zip(results, runs["today"])]
            row["ratio_vs_today"] = round(statistics.median(pairs), 3)
            row["paired_ratios"] = [round(x, 3) for x in pairs]
            row["same_loss_as_today"] = math.isclose(results[-1]["loss"], runs["today"][-1]["loss"], rel_tol=1e-3)
        out[path] = row
    return out


def bench_shape(shape, args, tmp: Path) -> dict:
    from sparsinglaw.train.trainer import prepare

    cache = tmp / f"prepared-{shape[0]}x{shape[1]}"  # tokenizer and packed data, built once, copied per run
    prepare(bench_config(cache, args.steps, shape, args.batch_size, args.seq_len))
    runs: dict[str, list[dict]] = {path: [] for path in args.paths}
    for repeat in range(args.repeats):  # interleaved: load from other users hits every path alike
        for path in args.paths:
            runs[path].append(run_path(path, cache, tmp, args, shape, repeat))
            print(f"  {shape[0]}x{shape[1]} {path} #{repeat}: {runs[path][-1]['steady']:.0f} tok/s", flush=True)
    tokens_per_step = args.batch_size * args.seq_len
    return {"shape": f"d={shape[0]} L={shape[1]}", "tokens_per_step": tokens_per_step,
            "paths": summarise(runs, tokens_per_step)}


def step_pairs(shape, args) -> dict:
    """Optimizer steps of today's model forward, the fused one and the compiled one, interleaved step by step
    (the finest pairing: load that comes and goes within seconds hits all alike); random tokens, the model,
    optimizer, clipping and loss of the runs above. Median step time and median paired ratio to today."""
    from sparsinglaw.train.config import ModelConfig
    from sparsinglaw.train.fastpath import install_fused_loss
    from sparsinglaw.train.modeling import build_model

    tokens = torch.randint(0, 2048, (args.batch_size, args.seq_len), generator=torch.Generator().manual_seed(0))
    steppers = {}
    for path in [p for p in ("today", "fused", "compiled") if p in args.paths]:
        torch.manual_seed(0)
        model = build_model(ModelConfig(hidden_size=shape[0], num_layers=shape[1], head_dim=16, mup=RECIPE["model"]["mup"]), 2048, args.seq_len)
        if path != "today":
            install_fused_loss(model, compile_forward=path == "compiled")
        model.train()
        steppers[path] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1))

    def step(model, opt) -> float:
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    warmup, losses = {}, {}
    for path, stepper in steppers.items():  # first steps: compiling, allocator warm-up
        started = time.perf_counter()
        losses[path] = [step(*stepper) for _ in range(2)]
        warmup[path] = round(time.perf_counter() - started, 1)
    times: dict[str, list[float]] = {path: [] for path in steppers}
    for _ in range(args.steps):
        for path, stepper in steppers.items():
            started = time.process_time()  # this process's CPU time: other users' time slices do not count
            step(*stepper)
            times[path].append(time.process_time() - started)
    tokens_per_step = args.batch_size * args.seq_len
    return {"shape": f"d={shape[0]} L={shape[1]}", "steps": args.steps, "paths": {path: {
        "median_step_ms": round(1e3 * statistics.median(t), 1),
        "tokens_per_s": round(tokens_per_step / statistics.median(t), 1),
        "ratio_vs_today": round(statistics.median(a / b for a, b in zip(times["today"], t)), 3),
        "first_two_steps_s": warmup[path], "first_losses": losses[path],
    } for path, t in times.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="demo")
    parser.add_argument("--paths", default="today,fused,compiled,plain",
                        help="comma-separated, from today, fused, compiled, plain (today first: ratios are to it)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the paths this many times")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--tracking", action="store_true", help="also measure the tracking share of a run")
    parser.add_argument("--step-pairs", action="store_true",
                        help="interleave single optimizer steps of the paths (no Trainer) instead of whole runs")
    args = parser.parse_args()
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(args.paths) - {*TRAINER_PATHS, "plain"}
    if unknown:
        parser.error(f"unknown paths {sorted(unknown)}; choose from today, fused, compiled, plain")
    torch.set_num_threads(args.threads)
    if args.step_pairs:
        if "today" not in args.paths:
            parser.error("--step-pairs compares with today: include it in --paths")
        for shape in SHAPES[args.shapes]:
            result = step_pairs(shape, args)
            print(json.dumps(result))
            print(f"{result['shape']}: " + ", ".join(f"{path} {row['tokens_per_s']:.0f} tok/s "
                                                     f"({row['ratio_vs_today']:.2f}x)"
                                                     for path, row in result["paths"].items()), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        shapes = [bench_shape(shape, args, Path(tmp)) for shape in SHAPES[args.shapes]]
        tracking = tracking_share(Path(tmp) / "prepared-64x4", Path(tmp) / "tracked", args.steps) \
            if args.tracking and (64, 4) in SHAPES[args.shapes] else None
    result = {"steps": args.steps, "threads": args.threads, "repeats": args.repeats, "shapes": shapes,
              "tracking": tracking}
    print(json.dumps(result, indent=2))
    for shape in shapes:
        line = ", ".join(f"{path} {row['steady_tokens_per_s']:.0f} tok/s"
                         + (f" ({row['ratio_vs_today']:.2f}x)" if "ratio_vs_today" in row else "")
                         for path, row in shape["paths"].items())
        print(f"{shape['shape']}: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
