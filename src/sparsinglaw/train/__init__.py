"""Pre-train small causal LMs with a chosen activation and shape, on the transformers Trainer.

    from sparsinglaw.train import load_config, train
    cfg = load_config("run.toml", ["model.activation=silu"])
    outcome = train(cfg)             # resumes from RUN_DIR's last complete checkpoint if there is one

Submodules: ``config`` (typed, validated config), ``shapes`` (d, L, d_f from N and r), ``modeling``
(transformers model), ``data`` (split, pack, order; the tokenizer is ``data.tokenizer``), ``checkpoints``
(the run's config guard; what a run keeps on disk is ``store.runs``), ``trainer`` (the Trainer wiring).
Heavy imports happen only when training.
"""

from sparsinglaw.train.config import (
    PRESETS,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TokenizerConfig,
    TrainConfig,
    load_config,
    paper_preset,
    tiny_preset,
)
from sparsinglaw.train.shapes import Shape, resolve_shape


def train(cfg, **kw):
    """Train or resume ``cfg`` (see ``sparsinglaw.train.trainer.train``)."""
    from sparsinglaw.train.trainer import train as _train  # here: the package's face stays cheap to import

    return _train(cfg, **kw)


__all__ = [
    "PRESETS", "DataConfig", "ModelConfig", "OptimConfig", "Shape", "TokenizerConfig", "TrainConfig",
    "load_config", "paper_preset", "resolve_shape", "tiny_preset", "train",
]
