"""Hooks as context managers: attach a callback to every FFN, always detach, fail loudly if nothing runs.

Usage::

    with attach(layers, callback) as calls:
        model(input_ids)
    calls.require_called()   # ModelError if no FFN hook fired (e.g. a fused kernel bypassed the modules)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from sparsinglaw.errors import ModelError
from sparsinglaw.models.adapters import FFNLayer, HCallback


class CallCount:
    """How many times the hooks fired, per FFN index."""

    def __init__(self, layers: Sequence[FFNLayer]):
        self.layers = list(layers)
        self.per_layer = [0] * len(self.layers)

    def require_called(self) -> None:
        """Raise if some dense FFN was never reached (MoE experts may legitimately see no token)."""
        missed = [layer.name for layer, n in zip(self.layers, self.per_layer) if n == 0 and layer.expert is None]
        if missed:
            raise ModelError(
                f"{len(missed)} FFN hook(s) never fired (first: {missed[0]}); the model's forward bypasses "
                "the modules the adapter found. Register an adapter that matches this implementation"
            )


@contextmanager
def attach(layers: Sequence[FFNLayer], callback: HCallback, *, output: bool = False) -> Iterator[CallCount]:
    """Attach ``callback`` to every layer for the duration of the block; detach even on error.

    ``output=True`` calls it after the down projection with ``(layer, h, y)`` (``FFNLayer.attach_output``)
    instead of before it with ``(layer, h, s)``."""
    if not layers:
        raise ModelError("no FFN layers to attach to; check the model's adapter")
    calls = CallCount(layers)

    def counted(layer: FFNLayer, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor | None:
        calls.per_layer[layer.index] += 1
        return callback(layer, h, s)

    handles = []
    try:
        for layer in layers:
            handles.append(layer.attach_output(counted) if output else layer.attach(counted))
        yield calls
    finally:
        for handle in handles:
            handle.remove()
