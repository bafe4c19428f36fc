"""Every linear projection of a decoder block, for input sparsity (TEAL-style).

Output sparsity (``adapters.find_ffn_layers``) asks which neurons of the FFN's ``h`` matter. Input sparsity
asks, for each projection ``y = W x``, which entries of its input ``x`` matter, for all seven projections of
a Llama-family block: ``self_attn.{q,k,v,o}_proj`` and ``mlp.{gate,up,down}_proj``. q, k and v read the
same input (the attention norm's output), as do gate and up; each projection still gets its own threshold,
because the rule weighs ``|x_j|`` by its own column norm ``||W[:, j]||``.

A ``Projection`` offers the two methods ``metrics.cett.CETTCurves`` asks of an FFN layer
(``down_weight``, ``down_column_norms``), so the CETT statistics gather unchanged with ``x`` in place of
``h`` and ``W`` in place of ``W_down``: the dropped share of ``W x`` is exactly CETT's quantity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from sparsinglaw.errors import ModelError

KINDS = ("q", "k", "v", "o", "gate", "up", "down")
_PATHS = {"q": ("self_attn", "q_proj"), "k": ("self_attn", "k_proj"), "v": ("self_attn", "v_proj"),
          "o": ("self_attn", "o_proj"), "gate": ("mlp", "gate_proj"), "up": ("mlp", "up_proj"),
          "down": ("mlp", "down_proj")}


@dataclass(eq=False)
class Projection:
    """One ``nn.Linear`` of block ``block``: ``kind`` is one of ``KINDS``; ``index`` its place in the list."""

    index: int
    block: int
    kind: str
    name: str
    module: nn.Linear
    expert: int | None = None  # CETTCurves reads it (no experts here)
    _norms: torch.Tensor | None = field(default=None, repr=False)

    @property
    def in_features(self) -> int:
        return self.module.in_features

    @property
    def out_features(self) -> int:
        return self.module.out_features

    @property
    def width(self) -> int:
        return self.module.in_features

    @property
    def parameters(self) -> int:
        return self.in_features * self.out_features

    def down_weight(self) -> torch.Tensor:
        """``W`` (out, in), the name ``CETTCurves`` asks for."""
        return self.module.weight

    def down_column_norms(self) -> torch.Tensor:
        """``||W[:, j]||`` per input ``j`` (float32, cached: the weights do not change)."""
        if self._norms is None:
            self._norms = self.module.weight.detach().float().norm(dim=0).cpu().contiguous()
        return self._norms

    def output_without_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.module.bias is None else y - self.module.bias


def find_projections(model: nn.Module, kinds: Sequence[str] = KINDS) -> list[Projection]:
    """The projections of every block of a Llama-family model (``model.model.layers[i]``), block by block
    in ``kinds`` order; ``ModelError`` when the model has no such blocks."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ModelError(f"unknown projection kind(s) {unknown}; choose from {', '.join(KINDS)}")
    blocks = getattr(getattr(model, "model", None), "layers", None)
    if blocks is None:
        raise ModelError("input sparsity needs a Llama-family model (model.model.layers[i].self_attn/.mlp); "
                         f"{type(model).__name__} has none")
    found: list[Projection] = []
    for b, block in enumerate(blocks):
        for kind in kinds:
            parent, leaf = _PATHS[kind]
            module = getattr(getattr(block, parent, None), leaf, None)
            if not isinstance(module, nn.Linear):
                raise ModelError(f"block {b} has no nn.Linear {parent}.{leaf}; input sparsity covers "
                                 "Llama-family blocks only for now")
            found.append(Projection(len(found), b, kind, f"model.layers.{b}.{parent}.{leaf}", module))
    return found


InputCallback = Callable[[Projection, torch.Tensor], torch.Tensor | None]
OutputCallback = Callable[[Projection, torch.Tensor, torch.Tensor], None]


@contextmanager
def attach_inputs(projections: Sequence[Projection], callback: InputCallback) -> Iterator[list[int]]:
    """Call ``callback(projection, x)`` before every projection; a returned tensor replaces ``x``. Yields the
    call counts, one per entry of ``projections``; hooks are removed on exit, even on error."""
    calls = [0] * len(projections)
    handles = []

    def hook_for(position: int, p: Projection):
        def hook(module, args):
            calls[position] += 1
            out = callback(p, args[0])
            return None if out is None else (out, *args[1:])
        return hook

    try:
        for position, p in enumerate(projections):
            handles.append(p.module.register_forward_pre_hook(hook_for(position, p)))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def observe_outputs(projections: Sequence[Projection], callback: OutputCallback) -> Iterator[list[int]]:
    """Call ``callback(projection, x, y)`` after every projection (``y`` without its bias)."""
    calls = [0] * len(projections)
    handles = []

    def hook_for(position: int, p: Projection):
        def hook(module, args, output):
            calls[position] += 1
            callback(p, args[0], p.output_without_bias(output))
        return hook

    try:
        for position, p in enumerate(projections):
            handles.append(p.module.register_forward_hook(hook_for(position, p)))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def require_called(projections: Sequence[Projection], calls: list[int]) -> None:
    missed = [p.name for p, n in zip(projections, calls) if n == 0]
    if missed:
        raise ModelError(f"{len(missed)} projection hook(s) never fired (first: {missed[0]}); the model's "
                         "forward bypasses its nn.Linear modules")


__all__ = ["KINDS", "Projection", "attach_inputs", "find_projections", "observe_outputs", "require_called"]
