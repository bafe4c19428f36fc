"""Typed training configuration on the package's ``Config`` base (``sparsinglaw.config``).

A config file is a table per section (``[model]``, ``[tokenizer]``, ``[data]``, ``[optim]``, optionally
``[track]``) plus top-level run settings. An optional top-level ``preset = "paper"`` starts from a preset
(see ``PRESETS``) and the file's values override it; command-line overrides (``model.activation=silu``) are
applied last. Every bad value raises ``ConfigError`` whose message names the dotted field, before any work
starts. ``TrackSettings`` is the one tracking-settings type: training (``[track]``), studies and
``sparsinglaw track`` all use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.config import (  # noqa: F401  (apply_overrides, dumps_toml, parse_override: re-exported)
    Config,
    apply_overrides,
    deep_merge,
    dumps_toml,
    parse_override,
    read_config_file,
)
from sparsinglaw.errors import ConfigError
from sparsinglaw.track.settings import TRACK_MODES, TrackSettings  # noqa: F401  (TRACK_MODES: re-exported)
from sparsinglaw.train.shapes import resolve_shape

ACTIVATIONS = ("relu", "silu", "gelu", "relu2")
DTYPES = ("float32", "bfloat16", "float16")
DECAY_TYPES = ("linear", "cosine", "1-sqrt")


@dataclass
class ModelConfig(Config):
    """Architecture. Size either from (n_params, ratio) with N = (4 + (3|2) * ffn_mult) d^2 L, or explicit."""

    activation: str = "relu"  # relu | silu | gelu | relu2 (transformers ACT2FN names)
    gated: bool = True  # gated FFN (Llama/Granite) or plain act(W_in x) (GPT-NeoX)
    n_params: float | None = None  # non-embedding parameters N
    ratio: float | None = None  # width-depth ratio r = d / L
    hidden_size: int | None = None  # d (explicit shape; overrides n_params/ratio)
    num_layers: int | None = None  # L
    intermediate_size: int | None = None  # d_f (default ffn_mult * d)
    num_heads: int | None = None  # default d / head_dim
    num_kv_heads: int | None = None  # default num_heads (no grouped-query attention)
    head_dim: int = 64  # used to pick num_heads and to round d when sizing from (N, r)
    ffn_mult: float = 2.5  # d_f = ffn_mult * d (docs/paper.md section 4)
    tie_embeddings: bool = True
    init_std: float = 0.02
    mup: bool = False  # MiniCPM-style scalings through Granite's multipliers (gated only)
    scale_emb: float = 12.0  # embedding multiplier
    scale_depth: float = 1.4  # residual branches scaled by scale_depth / sqrt(L)
    dim_model_base: int = 256  # logits divided by d / dim_model_base
    rope_theta: float = 10000.0

    def validate(self) -> None:
        pos = lambda v: v is None or v > 0  # noqa: E731
        self.check([
            (self.activation in ACTIVATIONS, "activation", f"is not one of {', '.join(ACTIVATIONS)}"),
            (pos(self.n_params), "n_params", "must be > 0"),
            (pos(self.ratio), "ratio", "must be > 0"),
            (pos(self.hidden_size), "hidden_size", "must be > 0"),
            (pos(self.num_layers), "num_layers", "must be > 0"),
            (pos(self.intermediate_size), "intermediate_size", "must be > 0"),
            (pos(self.num_heads), "num_heads", "must be > 0"),
            (pos(self.num_kv_heads), "num_kv_heads", "must be > 0"),
            (self.head_dim > 0, "head_dim", "must be > 0"),
            (self.ffn_mult > 0, "ffn_mult", "must be > 0"),
            (self.init_std > 0, "init_std", "must be > 0"),
            (self.scale_emb > 0, "scale_emb", "must be > 0"),
            (self.scale_depth > 0, "scale_depth", "must be > 0"),
            (self.dim_model_base > 0, "dim_model_base", "must be > 0"),
            (not (self.mup and not self.gated), "mup", "needs model.gated=true (the scalings use Granite)"),
        ], "model")
        explicit = self.hidden_size is not None or self.num_layers is not None
        if explicit and (self.hidden_size is None or self.num_layers is None):
            missing = "hidden_size" if self.hidden_size is None else "num_layers"
            raise ConfigError(f"model.{missing} is missing: an explicit shape needs both hidden_size and num_layers")
        if not explicit and (self.n_params is None or self.ratio is None):
            raise ConfigError("model.n_params and model.ratio are needed (or explicit model.hidden_size and "
                              "model.num_layers)")


@dataclass
class TokenizerConfig(Config):
    """Train a byte-level BPE on the training documents, or reuse a saved tokenizer (``path``)."""

    path: str | None = None  # local tokenizer directory (or any AutoTokenizer-loadable local path)
    vocab_size: int = 8192
    min_frequency: int = 2
    max_train_chars: int = 50_000_000  # train the BPE on at most this much text

    def validate(self) -> None:
        self.check([
            (self.vocab_size >= 260, "vocab_size", "must be >= 260 (256 bytes plus special tokens)"),
            (self.min_frequency >= 1, "min_frequency", "must be >= 1"),
            (self.max_train_chars > 0, "max_train_chars", "must be > 0"),
        ], "tokenizer")


@dataclass
class DataConfig(Config):
    """Training text and its held-out validation split (by whole documents)."""

    source: str = "builtin"  # builtin | a .txt/.jsonl file | a datasets name or directory
    text_field: str = "text"
    split: str = "train"
    validation_fraction: float = 0.05
    max_documents: int | None = None  # use only the first N documents (quick experiments, tests)
    validation_tokens: int = 65_536  # tokens of the validation split evaluated at each checkpoint (0: none)
    streaming: bool = False  # stream a `datasets` dataset instead of loading it whole
    max_chars: int | None = None  # streaming: stop after this much training text (default 8 x token_budget)

    def validate(self) -> None:
        self.check([
            (0.0 < self.validation_fraction < 1.0, "validation_fraction", "must be in (0, 1)"),
            (self.max_documents is None or self.max_documents >= 2, "max_documents", "must be >= 2"),
            (self.validation_tokens >= 0, "validation_tokens", "must be >= 0"),
            (self.max_chars is None or self.max_chars > 0, "max_chars", "must be > 0"),
        ], "data")


@dataclass
class OptimConfig(Config):
    """AdamW with a warmup-stable-decay schedule (defaults: the paper's recipe, docs/paper.md section 4)."""

    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # 0 disables clipping
    warmup_fraction: float = 0.01  # share of the steps spent warming up
    decay_fraction: float = 0.1  # share of the steps spent decaying (the last ones)
    decay_type: str = "cosine"  # linear | cosine | 1-sqrt
    min_lr_ratio: float = 0.0

    def validate(self) -> None:
        self.check([
            (self.lr > 0, "lr", "must be > 0"),
            (0 <= self.beta1 < 1, "beta1", "must be in [0, 1)"),
            (0 <= self.beta2 < 1, "beta2", "must be in [0, 1)"),
            (self.eps > 0, "eps", "must be > 0"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (self.grad_clip >= 0, "grad_clip", "must be >= 0"),
            (0 <= self.warmup_fraction < 1, "warmup_fraction", "must be in [0, 1)"),
            (0 <= self.decay_fraction <= 1, "decay_fraction", "must be in [0, 1]"),
            (self.warmup_fraction + self.decay_fraction <= 1, "decay_fraction", "plus warmup_fraction must be <= 1"),
            (self.decay_type in DECAY_TYPES, "decay_type", f"is not one of {', '.join(DECAY_TYPES)}"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]"),
        ], "optim")


# Run settings that do not change what is trained: they may differ when resuming a run directory.
# fused_loss and compile change how the loss is computed (float rounding), not what is computed.
NON_RESULT_FIELDS = ("run_dir", "log_every_steps", "tensorboard", "report_to", "progress", "dataloader_workers",
                     "track", "evaluate", "fused_loss", "compile")


@dataclass
class TrainConfig(Config):
    """A whole training run. ``token_budget`` and ``checkpoint_every_tokens`` count tokens over all ranks."""

    run_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seq_len: int = 1024
    batch_size: int = 8  # sequences per device per micro-batch
    grad_accum: int = 1
    token_budget: int = 10_000_000
    checkpoint_every_tokens: int = 1_000_000
    seed: int = 0
    dtype: str = "float32"  # float32 | bfloat16 | float16 (mixed precision; weights stay float32)
    log_every_steps: int = 10
    tensorboard: bool = True  # log to TensorBoard when it is installed
    # TrainingArguments.report_to: "none", "all", or integrations joined by commas ("wandb,tensorboard");
    # tracked sparsity goes to the same place as the losses
    report_to: str = "none"
    progress: bool = True
    # the validation loss (eval_loss) at each checkpoint; studies whose tracking measures the same validation
    # tokens turn it off and take the loss from tracking's dense pass instead (the same number, computed once)
    evaluate: bool = True
    dataloader_workers: int = 0
    # the training loss over the tied output head in cache-sized chunks, gradients found in the forward
    # (train.fastpath; same loss up to float rounding, 1.3x the tokens/s at the demo's shape, benchmarks/RESULTS.md)
    fused_loss: bool = True
    # torch.compile the training forward (train.fastpath): faster steps after a compile of tens of seconds
    # per process, so worth it only for long runs; off by default
    compile: bool = False
    fsdp: str = ""  # TrainingArguments.fsdp, e.g. "full_shard auto_wrap" (GPUs; see train.trainer)
    # PPL-p% measured on the validation split at each new checkpoint (main process; mode "pplp"); None: off.
    # Files before 2026-12 wrote track = true, track_p and track_max_tokens (see ``upgrade``).
    track: TrackSettings | None = None

    def validate(self) -> None:
        self.check([
            (bool(str(self.run_dir).strip()), "run_dir", "must be a directory path"),
            (self.seq_len >= 2, "seq_len", "must be >= 2"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.grad_accum >= 1, "grad_accum", "must be >= 1"),
            (self.token_budget > 0, "token_budget", "must be > 0"),
            (self.checkpoint_every_tokens > 0, "checkpoint_every_tokens", "must be > 0"),
            (self.dtype in DTYPES, "dtype", f"is not one of {', '.join(DTYPES)}"),
            (self.log_every_steps >= 1, "log_every_steps", "must be >= 1"),
            (self.dataloader_workers >= 0, "dataloader_workers", "must be >= 0"),
            (bool(self.report_targets()) or self.report_to.strip() == "none", "report_to",
             'must be "none", "all" or integrations joined by commas, e.g. "tensorboard,wandb"'),
        ])
        if self.compile and not self.fused_loss:
            raise ConfigError("compile=true compiles the fused training step: set fused_loss=true too")
        if self.track is not None:
            self._validate_track(self.track)
        self.check_budget(world_size=1)

        resolve_shape(self.model)  # ConfigError for shapes such as an r that gives zero layers

    def _validate_track(self, track: TrackSettings) -> None:
        if track.mode != "pplp":
            raise ConfigError(f"track.mode={track.mode!r}: training measures PPL-p% at each new checkpoint; set "
                              "track.mode=pplp (the calibrated CETT needs the finished run: sparsinglaw track RUN_DIR)")
        if track.max_tokens < self.seq_len:
            raise ConfigError(f"track.max_tokens={track.max_tokens} must be >= seq_len ({self.seq_len})")

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``track = true``, ``track_p`` and ``track_max_tokens`` (run files before 2026-12) as ``[track]``."""
        if not ({"track_p", "track_max_tokens"} & set(data) or isinstance(data.get("track"), bool)):
            return data
        data = dict(data)
        enabled = data.pop("track", False)
        legacy = {"p": data.pop("track_p", 1.0), "max_tokens": data.pop("track_max_tokens", 16_384)}
        data["track"] = {"mode": "pplp", **legacy} if enabled is True else None
        return data

    @classmethod
    def presets(cls) -> dict[str, Any]:
        return PRESETS

    def report_targets(self) -> list[str]:
        """``report_to`` as the list TrainingArguments takes ([] for "none")."""
        names = [name.strip() for name in str(self.report_to).split(",") if name.strip()]
        return [] if names == ["none"] else names

    def tokens_per_step(self, world_size: int = 1) -> int:
        return self.seq_len * self.batch_size * self.grad_accum * world_size

    def check_budget(self, world_size: int = 1) -> None:
        """The budget and checkpoint interval must each hold at least one optimizer step."""
        step = self.tokens_per_step(world_size)
        for name in ("token_budget", "checkpoint_every_tokens"):
            if getattr(self, name) < step:
                raise ConfigError(
                    f"{name}={getattr(self, name)} is smaller than one batch ({step} tokens = seq_len "
                    f"{self.seq_len} x batch_size {self.batch_size} x grad_accum {self.grad_accum} x "
                    f"{world_size} process(es)); raise it or shrink the batch"
                )

    def total_steps(self, world_size: int = 1) -> int:
        return self.token_budget // self.tokens_per_step(world_size)

    def checkpoint_steps(self, world_size: int = 1) -> int:
        return max(1, self.checkpoint_every_tokens // self.tokens_per_step(world_size))

    def result_dict(self, absolute_paths: bool = True) -> dict[str, Any]:
        """The settings that determine the trained weights (run-dir bookkeeping and logging removed). Local
        tokenizer and data paths are made absolute: ``runs/x/tokenizer`` and ``/home/me/runs/x/tokenizer``
        name the same files, so a run (or a study) resumed with its paths spelled the other way is the same
        run (``absolute_paths=False`` gives the paths as written, as fingerprints before 2026-11 used)."""
        data = {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}
        if absolute_paths and data["tokenizer"].get("path"):
            data["tokenizer"]["path"] = os.path.abspath(os.path.expanduser(data["tokenizer"]["path"]))
        source = data["data"].get("source")
        if absolute_paths and source != "builtin" and Path(source).expanduser().exists():  # else a datasets name
            data["data"]["source"] = os.path.abspath(os.path.expanduser(source))
        return data

    def fingerprint(self, absolute_paths: bool = True) -> str:
        text = json.dumps(self.result_dict(absolute_paths), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(source: str | Path | dict[str, Any] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A validated config from a file (TOML, or YAML by suffix), a dict, or a preset name, plus overrides."""
    return TrainConfig.load(source, overrides)


def paper_preset() -> TrainConfig:
    """The study's recipe (docs/paper.md section 4) at 0.1B, ReLU, r = 48 (768 x 16), sequence length 4096."""
    return TrainConfig(
        run_dir="runs/paper-0.1b-relu",
        model=ModelConfig(activation="relu", n_params=1.1e8, ratio=48, mup=True, tie_embeddings=True),
        tokenizer=TokenizerConfig(vocab_size=32000),
        optim=OptimConfig(lr=0.01, beta1=0.9, beta2=0.95, weight_decay=0.1),
        seq_len=4096, batch_size=4, grad_accum=32, token_budget=100_000_000_000,
        checkpoint_every_tokens=1_000_000_000, dtype="bfloat16",
    )


def tiny_preset() -> TrainConfig:
    """Seconds on a CPU: a 2-layer 64-wide model on part of the built-in corpus (tests, smoke runs)."""
    return TrainConfig(
        run_dir="runs/tiny",
        model=ModelConfig(activation="relu", hidden_size=64, num_layers=2, head_dim=16),
        tokenizer=TokenizerConfig(vocab_size=512),
        data=DataConfig(max_documents=200, validation_fraction=0.1, validation_tokens=2048),
        optim=OptimConfig(lr=3e-3, warmup_fraction=0.1),
        seq_len=64, batch_size=4, token_budget=8192, checkpoint_every_tokens=2048, log_every_steps=4,
    )


PRESETS = {"paper": paper_preset, "tiny": tiny_preset}
