"""Pre-train a small causal LM on the transformers ``Trainer``.

Using ``Trainer`` (not a hand-written loop) means ``torchrun --nproc_per_node N`` and ``accelerate launch``
work unchanged for DDP, and FSDP is a matter of ``accelerate launch --use_fsdp`` (or a ``fsdp`` entry in
TrainingArguments) on GPUs. What this module adds:

- a fixed, seeded data order read sequentially (see ``train.data``), so a restart continues exactly;
- AdamW with the warmup-stable-decay schedule, checkpoints every K tokens, each a standard transformers
  directory completed by ``sparsinglaw_checkpoint.json`` (tokens seen, losses);
- resuming from the last complete checkpoint after a kill, and a guard against reusing a run directory
  with a different config (``train.checkpoints``; the run's files: ``store.runs``);
- a progress bar in tokens (tokens/s, ETA; log lines instead when stderr is a file), TensorBoard when
  installed, and the results store;
- ``report_to`` passed to TrainingArguments (``report_to = "wandb"``, ``"tensorboard,wandb"``, ``"all"``): the
  losses and, when tracking, the sparsity measured at each checkpoint (``sparsity/pplp`` ...) go there as
  scalars. TensorBoard always writes to ``RUN_DIR/tensorboard``.

``hooks`` (callables ``hook(checkpoint_path, marker_info)``, e.g. sparsity tracking with a ``[track]`` table)
run on the main process after each complete checkpoint; under DDP the other ranks wait for it at their next
collective, so keep tracking short (``track.max_tokens``) or run ``sparsinglaw track`` beside the run.

Distributed runs need no code change (the commands: README, "Training at scale"). Tokens per step grow with
the number of processes N, so a run directory resumes only with the same N (checked) and the data order
stays exact; every rank memory-maps the same token shards (``train.data``) and reads its share of each
global batch. FSDP (``fsdp = "full_shard auto_wrap"``, passed to ``TrainingArguments.fsdp``, wrapping the
model's ``_no_split_modules``) needs GPUs: on CPU accelerate runs it as DDP, so the CPU tests run the model
families under PyTorch's FSDP2 directly (tests/train/test_fsdp_cpu.py); it has not run on a GPU yet.
Checkpoints stay full transformers directories (Trainer gathers the state dict).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator, set_seed
from transformers.trainer_callback import ProgressCallback

from sparsinglaw.data.shards import is_shard_dir
from sparsinglaw.progress import progress_bar
from sparsinglaw.store import runs
from sparsinglaw.store.database import ResultsStore
from sparsinglaw.track.tracker import checkpoint_hook
from sparsinglaw.train.checkpoints import guard_run_dir
from sparsinglaw.train.config import TrainConfig
from sparsinglaw.train.data import EvalSequences, OrderedTrainData, prepare_corpus_data, prepare_shard_data
from sparsinglaw.train.fastpath import install_fused_loss
from sparsinglaw.train.memory import check_training_fits
from sparsinglaw.train.modeling import build_model

log = logging.getLogger("sparsinglaw")

CheckpointHook = Callable[[Path, dict[str, Any]], None]


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def schedule_steps(cfg: TrainConfig, total: int) -> dict[str, int]:
    """Warmup / stable / decay step counts of the WSD schedule (they sum to ``total``)."""
    warmup = int(round(cfg.optim.warmup_fraction * total))
    decay = min(total - warmup, int(round(cfg.optim.decay_fraction * total)))
    return {"warmup": warmup, "stable": total - warmup - decay, "decay": decay}


def training_arguments(cfg: TrainConfig, world: int, has_eval: bool) -> TrainingArguments:
    total, every = cfg.total_steps(world), cfg.checkpoint_steps(world)
    phases = schedule_steps(cfg, total)
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(cfg.run_dir), max_steps=total, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        optim="adamw_torch", learning_rate=cfg.optim.lr, adam_beta1=cfg.optim.beta1, adam_beta2=cfg.optim.beta2,
        adam_epsilon=cfg.optim.eps, weight_decay=cfg.optim.weight_decay, max_grad_norm=cfg.optim.grad_clip,
        lr_scheduler_type="warmup_stable_decay", warmup_steps=phases["warmup"],
        # the stable phase is what remains of max_steps after warmup and decay
        lr_scheduler_kwargs={"num_decay_steps": phases["decay"],
                             "decay_type": cfg.optim.decay_type, "min_lr_ratio": cfg.optim.min_lr_ratio},
        save_strategy="steps", save_steps=every, save_total_limit=None,  # keep every checkpoint for tracking
        eval_strategy="steps" if has_eval else "no", eval_steps=every if has_eval else None,
        logging_steps=cfg.log_every_steps, report_to=cfg.report_targets(), disable_tqdm=False,
        seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.dtype == "bfloat16", fp16=cfg.dtype == "float16",
        use_cpu=not cuda, ddp_backend="gloo" if world > 1 and not cuda else None, ddp_find_unused_parameters=False,
        dataloader_num_workers=cfg.dataloader_workers, dataloader_pin_memory=cuda, remove_unused_columns=False,
        fsdp=cfg.fsdp or None,
    )


class OrderedTrainer(Trainer):
    """A Trainer that reads the training set in its stored order (the order is shuffled in the dataset)."""

    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)


class CheckpointRecorder(TrainerCallback):
    """Completes each checkpoint with its marker, records it in the results store, runs the hooks."""

    def __init__(self, cfg: TrainConfig, run_info: dict, tokens_per_step: int, hooks: list[CheckpointHook]):
        self.cfg, self.run_info, self.tokens_per_step, self.hooks = cfg, run_info, tokens_per_step, hooks
        self.train_loss: float | None = None
        self.eval_loss: float | None = None
        self.eval_step = -1
        self.hook_seconds = 0.0  # wall time spent in the hooks (e.g. tracking), for the benchmark
        self.trainer: Trainer | None = None  # set by build_trainer: tracked sparsity is logged through it
        self.train_tokens = 0  # tokens in one pass over the packed training sequences (set by build_trainer)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_loss" in metrics:
            self.eval_loss, self.eval_step = float(metrics["eval_loss"]), state.global_step

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        info = {
            "run_id": self.run_info["run_id"], "fingerprint": self.run_info["fingerprint"],
            "step": state.global_step, "tokens_seen": state.global_step * self.tokens_per_step,
            "epochs": state.global_step * self.tokens_per_step / self.train_tokens if self.train_tokens else None,
            "tokens_per_step": self.tokens_per_step, "train_loss": self.train_loss,
            "eval_loss": self.eval_loss if self.eval_step == state.global_step else None,
            "learning_rate": next((h["learning_rate"] for h in reversed(state.log_history) if "learning_rate" in h), None),
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # Store row first, completion marker last: a stop in between leaves an incomplete checkpoint that
        # is redone on resume (re-recording replaces the row), never a complete one without its losses.
        self._record(path, info)
        runs.write_marker(path, info)
        started = time.perf_counter()
        for hook in self.hooks:
            hook(path, info)
        self.hook_seconds += time.perf_counter() - started
        if self.hooks and self.trainer is not None:
            scalars = self.tracked_scalars(path.name)
            if scalars:  # to every logger the Trainer reports to (TensorBoard, wandb) at this step
                self.trainer.log(scalars)

    def tracked_scalars(self, checkpoint: str) -> dict[str, float]:
        """The activation ratios the hooks stored for ``checkpoint``: ``sparsity/METRIC`` (with the setting
        appended when one metric was measured at several)."""
        rows = [r for r in ResultsStore(self.cfg.run_dir).measurements(self.run_info["run_id"])
                if r["checkpoint"] == checkpoint and r["activation_ratio"] is not None]
        per_metric: dict[str, int] = {}
        for row in rows:
            per_metric[row["metric"]] = per_metric.get(row["metric"], 0) + 1
        scalars = {}
        for row in rows:
            setting = ",".join(f"{k}={v}" for k, v in sorted(row["setting"].items()))
            name = f"sparsity/{row['metric']}" + (f"[{setting}]" if per_metric[row["metric"]] > 1 else "")
            scalars[name] = float(row["activation_ratio"])
        return scalars

    def _record(self, path: Path, info: dict) -> None:
        store = ResultsStore(self.cfg.run_dir)
        run_id, name, tokens = info["run_id"], path.name, info["tokens_seen"]
        store.add_run(run_id, self.cfg.to_dict(), fingerprint=info["fingerprint"])
        store.add_checkpoint(run_id, name, step=info["step"], tokens=tokens, path=str(path))
        for metric in ("train_loss", "eval_loss"):
            if info[metric] is not None:
                store.record(run_id, name, tokens, metric, value=info[metric], config=self.cfg.to_dict())


class TokenProgress(TrainerCallback):
    """A progress bar counted in tokens: shows tokens/s, ETA and the latest loss (as log lines every 10% or
    10 s when stderr is not a terminal, see ``sparsinglaw.progress``)."""

    def __init__(self, total_tokens: int, tokens_per_step: int):
        self.total, self.per_step, self.bar = total_tokens, tokens_per_step, None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress_bar(self.total, "train", "tok", initial=state.global_step * self.per_step, leave=True,
                                    unit_scale=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step * self.per_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tensorboard_callback(cfg: TrainConfig):
    """Our TensorBoard logger, writing to RUN_DIR/tensorboard: when ``tensorboard`` is on, or ``report_to``
    asks for it (then it replaces the Trainer's own, which would write to a dated folder of its choosing)."""
    targets = cfg.report_targets()
    if not (cfg.tensorboard or "tensorboard" in targets or "all" in targets):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback
    except ImportError:  # tensorboard is optional: no logging, no error
        return None
    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(Path(cfg.run_dir) / "tensorboard")))


@dataclass
class Prepared:
    """Everything built before training starts (also used by the benchmark's plain loop)."""

    cfg: TrainConfig
    run_info: dict
    tokenizer: Any
    train_sequences: Any
    valid_sequences: Any
    world: int
    args: TrainingArguments


def prepare(cfg: TrainConfig, *, force: bool = False) -> Prepared:
    """Check the run directory, then the tokenizer and token data (the main process first, others reuse)."""
    world = world_size()
    cfg.check_budget(world)
    check_training_fits(cfg)  # before the run directory is written or any weight allocated
    run_dir = Path(cfg.run_dir)
    # TrainingArguments sets up the process group (torchrun / accelerate) before anything else.
    args = training_arguments(cfg, world, has_eval=cfg.evaluate and cfg.data.validation_tokens >= cfg.seq_len)
    # The main process checks the run dir and builds the tokenizer and token data first; the other ranks
    # then find them cached in the run dir.
    with args.main_process_first(desc="tokenizer and data", local=False):
        if args.process_index == 0:
            info = guard_run_dir(cfg, force=force, world_size=world)
            runs.remove_incomplete(run_dir)
        else:
            info = json.loads((run_dir / runs.RUN_INFO).read_text(encoding="utf-8"))
        # Shards either way, read from disk per sequence: tokenized once by sparsinglaw data, or by the run
        # into RUN_DIR/data/shards from its corpus.
        prepare_data = prepare_shard_data if is_shard_dir(cfg.data.source) else prepare_corpus_data
        tokenizer, train, valid = prepare_data(cfg, run_dir)
    return Prepared(cfg, info, tokenizer, train, valid, world, args)


def new_model(prep: Prepared, *, fast: bool = True):
    """The freshly initialised model; ``fast``: with the training step ``fused_loss`` / ``compile`` ask for."""
    set_seed(prep.cfg.seed)  # identical initial weights in every run of this config
    tok = prep.tokenizer
    model = build_model(prep.cfg.model, len(tok), prep.cfg.seq_len, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
    if fast and prep.cfg.fused_loss:
        install_fused_loss(model, compile_forward=prep.cfg.compile)
    return model


@dataclass
class TrainOutcome:
    run_dir: Path
    checkpoints: list[dict] = field(default_factory=list)
    tokens_seen: int = 0
    train_loss: float | None = None
    eval_loss: float | None = None
    seconds: float = 0.0
    tokens_trained_now: int = 0
    hook_seconds: float = 0.0  # of ``seconds``, the time spent in checkpoint hooks (tracking)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_trained_now / self.seconds if self.seconds > 0 else 0.0


def build_trainer(prep: Prepared, hooks: list[CheckpointHook] | None = None) -> OrderedTrainer:
    cfg, world = prep.cfg, prep.world
    tps = cfg.tokens_per_step(world)
    length = cfg.total_steps(world) * cfg.batch_size * cfg.grad_accum * world
    recorder = CheckpointRecorder(cfg, prep.run_info, tps, list(hooks or []))
    recorder.train_tokens = len(prep.train_sequences) * cfg.seq_len
    trainer = OrderedTrainer(
        model=new_model(prep), args=prep.args, data_collator=default_data_collator, processing_class=prep.tokenizer,
        train_dataset=OrderedTrainData(prep.train_sequences, length, cfg.seed),
        eval_dataset=EvalSequences(prep.valid_sequences) if len(prep.valid_sequences) else None,
        callbacks=[recorder],
    )
    trainer.remove_callback(ProgressCallback)
    if cfg.progress:
        trainer.add_callback(TokenProgress(cfg.total_steps(world) * tps, tps))
    board = _tensorboard_callback(cfg)
    if board is not None:
        trainer.remove_callback(type(board))  # report_to's own, if it added one: one writer, one folder
        trainer.add_callback(board)
    recorder.trainer = trainer
    trainer.recorder = recorder
    return trainer


def train(cfg: TrainConfig, *, force: bool = False, hooks: list[CheckpointHook] | None = None) -> TrainOutcome:
    """Train (or resume) the run ``cfg`` describes; returns where it ended."""
    prep = prepare(cfg, force=force)
    hooks = list(hooks or [])
    if cfg.track is not None:
        hooks.append(checkpoint_hook(cfg.run_dir, cfg.track))
    trainer = build_trainer(prep, hooks)
    resume = runs.last_complete_checkpoint(cfg.run_dir)
    start_step = (runs.read_marker(resume) or {}).get("step", 0) if resume else 0
    if resume:
        log.info("resuming from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    tps = cfg.tokens_per_step(prep.world)
    done = runs.complete_checkpoints(cfg.run_dir)
    return TrainOutcome(
        run_dir=Path(cfg.run_dir), checkpoints=done, tokens_seen=trainer.state.global_step * tps,
        train_loss=done[-1].get("train_loss") if done else None, eval_loss=done[-1].get("eval_loss") if done else None,
        seconds=seconds, tokens_trained_now=(trainer.state.global_step - start_step) * tps,
        hook_seconds=trainer.recorder.hook_seconds,
    )
