"""A study: a declarative grid of training runs with shared data and measurement settings (issue 6).

The grid is activation x (parameter budget, width-depth ratio) x token budget. Every cell is a
``TrainConfig`` built from ``base`` (a partial training config: data, tokenizer, optim, seq_len, ...) with
the cell's activation, shape and token budget filled in. A shape may list ``activations`` to restrict it
(e.g. a width-depth pair trained with ReLU only). Files are TOML or YAML::

    name = "my-study"
    out_dir = "runs/my-study"
    activations = ["relu", "silu"]
    token_budgets = [65536]
    launcher = "sequential"          # or "torchrun" (each cell: torchrun --nproc_per_node N)

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
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsinglaw.errors import ConfigError
from sparsinglaw.train.config import ACTIVATIONS, TrainConfig, _merge, dumps_toml, layered_settings

LAUNCHERS = ("sequential", "torchrun")
BUILTIN_JSONL = "builtin-corpus.jsonl"  # the built-in corpus, written once per study (reading it takes seconds)


@dataclass
class ShapeSpec:
    """One (parameter budget, width-depth ratio) point of the grid, optionally for some activations only."""

    n_params: float
    ratio: float
    activations: list[str] | None = None

    def __post_init__(self) -> None:
        if not (self.n_params > 0 and self.ratio > 0):
            raise ConfigError(f"shapes: n_params={self.n_params!r} and ratio={self.ratio!r} must be > 0")
        for act in self.activations or []:
            if act not in ACTIVATIONS:
                raise ConfigError(f"shapes.activations: {act!r} is not one of {', '.join(ACTIVATIONS)}")


@dataclass
class TrackSpec:
    """Measurement settings shared by every cell (PPL-p% on each run's validation split)."""

    p: float = 1.0
    max_tokens: int = 4096
    batch_size: int = 8
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        if self.p <= 0 or self.max_tokens < 2 or self.batch_size < 1 or self.tolerance <= 0:
            raise ConfigError(f"track: p, tolerance must be > 0, max_tokens >= 2, batch_size >= 1 (got {self})")


@dataclass
class FitSpec:
    """Law fitting and report settings."""

    n_boot: int = 100  # bootstrap resamples per fitted curve
    level: float = 0.9
    skip_fraction: float = 0.2  # warmup points dropped before fitting
    pareto_points: int = 4  # settings per metric in the PPL-vs-activation figure

    def __post_init__(self) -> None:
        if self.n_boot < 10 or not 0 < self.level < 1 or not 0 <= self.skip_fraction < 1 or self.pareto_points < 2:
            raise ConfigError(f"fit: need n_boot >= 10, level in (0,1), skip_fraction in [0,1), pareto_points >= 2 "
                              f"(got {self})")


@dataclass
class StudyConfig:
    name: str = "study"
    out_dir: str = "runs/study"
    activations: list[str] = field(default_factory=lambda: ["relu", "silu"])
    shapes: list[ShapeSpec] = field(default_factory=list)
    token_budgets: list[int] = field(default_factory=lambda: [65_536])
    base: dict[str, Any] = field(default_factory=dict)
    track: TrackSpec = field(default_factory=TrackSpec)
    fit: FitSpec = field(default_factory=FitSpec)
    launcher: str = "sequential"
    nproc: int = 1  # processes per cell under torchrun
    threads: int = 0  # torch CPU threads (0: leave as is)

    def __post_init__(self) -> None:
        self.shapes = [s if isinstance(s, ShapeSpec) else _build(ShapeSpec, s, "shapes") for s in self.shapes]
        if isinstance(self.track, dict):
            self.track = _build(TrackSpec, self.track, "track")
        if isinstance(self.fit, dict):
            self.fit = _build(FitSpec, self.fit, "fit")
        self._validate()

    def _validate(self) -> None:
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

    def cells(self) -> list[Cell]:
        out = []
        for shape in self.shapes:
            for act in self.activations:
                if shape.activations and act not in shape.activations:
                    continue
                for tokens in self.token_budgets:
                    out.append(Cell(self, act, shape.n_params, shape.ratio, tokens))
        names = [c.name for c in out]
        if len(set(names)) != len(names):
            raise ConfigError("the grid has duplicate cells (repeated shapes or token budgets)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        data = self.to_dict()
        shapes, base = data.pop("shapes"), data.pop("base")
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        text = dumps_toml({k: v for k, v in data.items() if k not in lists})
        head, _, rest = text.partition("\n\n")
        text = head + "\n" + "".join(f"{k} = {_list_toml(v)}\n" for k, v in lists.items()) + "\n" + rest
        for s in shapes:
            text += "\n[[shapes]]\n" + dumps_toml({k: v for k, v in s.items() if not isinstance(v, list)})
            if s.get("activations"):
                text = text.rstrip("\n") + f"\nactivations = {json.dumps(s['activations'])}\n"
        return text + _base_toml(base)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        from sparsinglaw.fileio import atomic_write_text

        path = Path(path)
        return atomic_write_text(path, self.to_yaml() if path.suffix in (".yaml", ".yml") else self.to_toml())


def _list_toml(value: list) -> str:
    return json.dumps(value)  # lists of numbers / strings: JSON syntax is valid TOML


def _base_toml(base: dict[str, Any], prefix: str = "base") -> str:
    scalars = {k: v for k, v in base.items() if not isinstance(v, dict)}
    text = f"\n[{prefix}]\n" + dumps_toml(scalars) if scalars or not base else ""
    for key, value in base.items():
        if isinstance(value, dict):
            text += _base_toml(value, f"{prefix}.{key}")
    return text


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of settings, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting {where}.{unknown[0]} (known: {', '.join(sorted(known))})")
    try:
        return cls(**data)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


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
        if not (data.get("tokenizer") or {}).get("path"):  # one tokenizer for the whole study (runner trains it)
            data.setdefault("tokenizer", {})["path"] = str(Path(self.study.out_dir) / "tokenizer")
        if (data.get("data") or {}).get("source", "builtin") == "builtin":  # read once, kept as JSONL (runner)
            data.setdefault("data", {})["source"] = str(Path(self.study.out_dir) / BUILTIN_JSONL)
        data = _merge(data, {"run_dir": str(self.run_dir), "token_budget": self.tokens,
                             "model": {"activation": self.activation, "n_params": self.n_params,
                                       "ratio": self.ratio}})
        try:
            return TrainConfig.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"cell {self.name}: {err}") from None

    def describe(self) -> dict[str, Any]:
        from sparsinglaw.train.shapes import resolve_shape

        shape = resolve_shape(self.train_config().model)
        return {"cell": self.name, "activation": self.activation, "n_params": self.n_params, "ratio": self.ratio,
                "tokens": self.tokens, "hidden_size": shape.hidden_size, "num_layers": shape.num_layers,
                "actual_ratio": shape.ratio, "formula_params": shape.formula_params()}


def load_study(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> StudyConfig:
    """A validated study from a file (TOML, YAML by suffix), a dict or a preset name, plus overrides."""
    return _build(StudyConfig, layered_settings(source, overrides, PRESETS), "study")


def _tiny_base(docs: int, budget_checkpoint: int, seq_len: int = 64) -> dict[str, Any]:
    return {
        "seq_len": seq_len, "batch_size": 8, "checkpoint_every_tokens": budget_checkpoint, "log_every_steps": 4,
        "tensorboard": False, "progress": True,
        "model": {"head_dim": 16},
        "tokenizer": {"vocab_size": 512},
        "data": {"max_documents": docs, "validation_fraction": 0.1, "validation_tokens": 2048},
        "optim": {"lr": 1e-2, "warmup_fraction": 0.05, "decay_fraction": 0.1},
    }


def demo_preset() -> StudyConfig:
    """The demo: tiny ReLU and SiLU models at two scales plus a ReLU width-depth pair, built-in corpus."""
    base = _tiny_base(200, 4096)
    base["model"]["head_dim"] = 8
    return StudyConfig(
        name="demo", out_dir="runs/demo",
        activations=["relu", "silu"],
        shapes=[ShapeSpec(3e4, 16), ShapeSpec(1e5, 16), ShapeSpec(3e4, 6, ["relu"])],
        token_budgets=[32_768], base=base,
        track=TrackSpec(p=1.0, max_tokens=1024, batch_size=8), fit=FitSpec(n_boot=40, skip_fraction=0.2),
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
        token_budgets=[2048], base=base, track=TrackSpec(max_tokens=256, batch_size=4),
        fit=FitSpec(n_boot=20, skip_fraction=0.0, pareto_points=3),
    )


PRESETS = {"demo": demo_preset, "mini": mini_preset}
