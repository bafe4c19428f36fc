"""Whether a training run's model fits in memory, checked before anything is allocated or written.

Loading a model for measurement checks its weights against the memory available
(``models.loading.check_fits_in_memory``); training needs more per parameter, so it has its own check here.
AdamW in float32 holds four numbers per parameter: the weight, its gradient and the two moment estimates
(Loshchilov & Hutter, arXiv 1711.05101, Algorithm 2), 16 bytes. Mixed precision keeps the weights in float32
(``TrainConfig.dtype``), so the count stands for every dtype; activations come on top and are not counted, so
the check refuses only runs that cannot possibly fit.
"""

from __future__ import annotations

from sparsinglaw.data.tokenizer import load_tokenizer
from sparsinglaw.errors import ConfigError
from sparsinglaw.models.loading import _available_memory
from sparsinglaw.train.modeling import describe

BYTES_PER_PARAMETER = 16  # float32 weight + gradient + AdamW's two moments


def planned_vocab_size(cfg) -> int:
    """The vocabulary the run's model will have: the given tokenizer's, else the one it will train."""
    if cfg.tokenizer.path:
        return len(load_tokenizer(cfg.tokenizer.path))
    return cfg.tokenizer.vocab_size


def check_training_fits(cfg, available: int | None = None) -> None:
    """A ConfigError naming the sizes when the model of ``cfg`` and its optimizer state exceed the memory
    available (``available`` bytes, by default what the process may use), instead of the allocator's
    traceback or the kernel's OOM kill once training starts."""
    available = _available_memory() if available is None else available
    if available is None:
        return
    count = describe(cfg.model, planned_vocab_size(cfg), cfg.seq_len)["parameters"]["total"]
    need = count * BYTES_PER_PARAMETER
    if need > available:
        raise ConfigError(
            f"the model has {count:,} parameters: training needs at least {need / 2**30:.3g} GiB "
            f"(weights, gradients and AdamW state, {BYTES_PER_PARAMETER} bytes each) but only "
            f"{available / 2**30:.3g} GiB of memory is available; make the model smaller (model.n_params, or "
            "model.hidden_size and model.num_layers)")
