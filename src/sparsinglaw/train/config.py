"""Typed training configuration: dataclasses validated on creation, TOML/YAML round-trip, dotted overrides.

A config file is a table per section (``[model]``, ``[tokenizer]``, ``[data]``, ``[optim]``) plus top-level
run settings. An optional top-level ``preset = "paper"`` starts from a preset (see ``PRESETS``) and the
file's values override it; command-line overrides (``model.activation=silu``) are applied last. Every bad
value raises ``ConfigError`` whose message names the dotted field, before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from sparsinglaw.errors import ConfigError

ACTIVATIONS = ("relu", "silu", "gelu", "relu2")
DTYPES = ("float32", "bfloat16", "float16")
DECAY_TYPES = ("linear", "cosine", "1-sqrt")


def _check(section: str, checks: list[tuple[bool, str, str]], obj: Any) -> None:
    prefix = f"{section}." if section else ""
    for ok, name, why in checks:
        if not ok:
            raise ConfigError(f"{prefix}{name}={getattr(obj, name)!r} {why}")


@dataclass
class ModelConfig:
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

    def __post_init__(self) -> None:
        pos = lambda v: v is None or v > 0  # noqa: E731
        _check("model", [
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
        ], self)
        explicit = self.hidden_size is not None or self.num_layers is not None
        if explicit and (self.hidden_size is None or self.num_layers is None):
            missing = "hidden_size" if self.hidden_size is None else "num_layers"
            raise ConfigError(f"model.{missing} is missing: an explicit shape needs both hidden_size and num_layers")
        if not explicit and (self.n_params is None or self.ratio is None):
            raise ConfigError("model.n_params and model.ratio are needed (or explicit model.hidden_size and "
                              "model.num_layers)")


@dataclass
class TokenizerConfig:
    """Train a byte-level BPE on the training documents, or reuse a saved tokenizer (``path``)."""

    path: str | None = None  # local tokenizer directory (or any AutoTokenizer-loadable local path)
    vocab_size: int = 8192
    min_frequency: int = 2
    max_train_chars: int = 50_000_000  # train the BPE on at most this much text

    def __post_init__(self) -> None:
        _check("tokenizer", [
            (self.vocab_size >= 260, "vocab_size", "must be >= 260 (256 bytes plus special tokens)"),
            (self.min_frequency >= 1, "min_frequency", "must be >= 1"),
            (self.max_train_chars > 0, "max_train_chars", "must be > 0"),
        ], self)


@dataclass
class DataConfig:
    """Training text and its held-out validation split (by whole documents)."""

    source: str = "builtin"  # builtin | a .txt/.jsonl file | a datasets name or directory
    text_field: str = "text"
    split: str = "train"
    validation_fraction: float = 0.05
    max_documents: int | None = None  # use only the first N documents (quick experiments, tests)
    validation_tokens: int = 65_536  # tokens of the validation split evaluated at each checkpoint (0: none)
    streaming: bool = False  # stream a `datasets` dataset instead of loading it whole
    max_chars: int | None = None  # streaming: stop after this much training text (default 8 x token_budget)

    def __post_init__(self) -> None:
        _check("data", [
            (0.0 < self.validation_fraction < 1.0, "validation_fraction", "must be in (0, 1)"),
            (self.max_documents is None or self.max_documents >= 2, "max_documents", "must be >= 2"),
            (self.validation_tokens >= 0, "validation_tokens", "must be >= 0"),
            (self.max_chars is None or self.max_chars > 0, "max_chars", "must be > 0"),
        ], self)


@dataclass
class OptimConfig:
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

    def __post_init__(self) -> None:
        _check("optim", [
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
        ], self)


# Run settings that do not change what is trained: they may differ when resuming a run directory.
NON_RESULT_FIELDS = ("run_dir", "log_every_steps", "tensorboard", "report_to", "progress", "dataloader_workers",
                     "track", "track_p", "track_max_tokens")


@dataclass
class TrainConfig:
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
    dataloader_workers: int = 0
    fsdp: str = ""  # TrainingArguments.fsdp, e.g. "full_shard auto_wrap" (GPUs; see train.trainer)
    track: bool = False  # measure PPL-p% on the validation split at each checkpoint (main process)
    track_p: float = 1.0
    track_max_tokens: int = 16_384

    def __post_init__(self) -> None:
        _check("", [
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
            (self.track_p > 0, "track_p", "must be > 0"),
            (self.track_max_tokens >= self.seq_len, "track_max_tokens", "must be >= seq_len"),
        ], self)
        self.check_budget(world_size=1)
        from sparsinglaw.train.shapes import resolve_shape

        resolve_shape(self.model)  # ConfigError for shapes such as an r that gives zero layers

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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _build(cls, data, "")

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

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        from sparsinglaw.fileio import atomic_write_text

        path = Path(path)
        return atomic_write_text(path, self.to_yaml() if path.suffix in (".yaml", ".yml") else self.to_toml())


def _coerce(value: Any, kind: str, where: str) -> Any:
    """Convert a parsed value to a field's annotated type (annotations are strings here)."""
    if value is None:
        if "None" in kind:
            return None
        raise ConfigError(f"{where} cannot be empty")
    base = kind.replace(" | None", "")
    if base == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e6 written in a file or on the command line
    elif base == "float":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif base == "str":
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{where}={value!r} is not a valid {base}")


def _build(cls, data: dict[str, Any], prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table of settings, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting {prefix}{unknown[0]} (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        kind = known[name].type if isinstance(known[name].type, str) else known[name].type.__name__
        if kind in _SECTIONS:
            values[name] = _build(_SECTIONS[kind], value, f"{prefix}{name}.")
        else:
            values[name] = _coerce(value, kind, f"{prefix}{name}")
    return cls(**values)


_SECTIONS = {"ModelConfig": ModelConfig, "TokenizerConfig": TokenizerConfig, "DataConfig": DataConfig,
             "OptimConfig": OptimConfig}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dumps_toml(data: dict[str, Any]) -> str:
    """TOML for a config dict: scalars first, then one table per section. None is written by omission
    (TOML has no null), which round-trips because every optional field defaults to None."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict) and v is not None]
    for section, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``model.activation=silu`` -> (["model", "activation"], "silu"); values parse as TOML, else as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    if isinstance(value, str) and value.lower() in ("none", "null"):
        value = None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return data


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as err:  # tomllib / yaml parse errors: report the first line, no traceback
        raise ConfigError(f"{path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'}: "
                          f"{str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings")
    return data


def layered_settings(source: str | Path | dict[str, Any] | None, overrides: list[str] | None,
                     presets: dict[str, Any]) -> dict[str, Any]:
    """Settings from a file (TOML, or YAML by suffix), a dict or a preset name, then dotted overrides, with
    a ``preset`` key expanded underneath (preset < file < overrides). Shared by every config loader."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    elif str(source) in presets and not Path(source).exists():
        data = {"preset": str(source)}
    else:
        data = read_config_file(source)
    data = apply_overrides(data, list(overrides or []))
    preset = data.pop("preset", None)
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"preset={preset!r} is not one of {', '.join(presets)}")
        data = _merge(presets[preset]().to_dict(), data)
    return data


def load_config(source: str | Path | dict[str, Any] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A validated config from a file (TOML, or YAML by suffix), a dict, or a preset name, plus overrides."""
    return TrainConfig.from_dict(layered_settings(source, overrides, PRESETS))


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
