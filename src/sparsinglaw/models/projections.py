"""Every linear projection of a decoder block, for input sparsity (TEAL-style).

For each projection ``y = W x`` (a Llama block: q, k, v, o, gate, up, down) input sparsity asks which
entries of ``x`` matter; each projection gets its own threshold, since the rule weighs ``|x_j|`` by its own
``||W[:, j]||``. A ``ProjectionLayout`` says where one family keeps its projections in a decoder block;
fused projections (``qkv``, ``gate_up``) are one projection of their own kind, GPT-2's transposed ``Conv1D``
is hidden by ``Projection``, and mixture-of-experts blocks give their attention projections only. A
``Projection`` offers ``down_weight`` and ``down_column_norms``, so ``metrics.cett.CETTCurves`` gathers its
statistics unchanged with ``x`` for ``h`` and ``W`` for ``W_down``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from sparsinglaw.errors import ModelError
from sparsinglaw.models.adapters import decoder_blocks
from sparsinglaw.registry import Registry

KINDS = ("q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down")


@dataclass(frozen=True)
class ProjectionLayout:
    """Where one family keeps its projections: ``paths`` maps kind -> module path inside a block, in block
    order; ``requires`` names further paths a block must have for the layout to apply (tells families with
    the same attention apart); ``transposed``: the weights are stored (in, out) (GPT-2's ``Conv1D``)."""

    name: str
    paths: dict[str, str]
    requires: tuple[str, ...] = ()
    transposed: bool = False
    note: str = ""  # what the layout leaves out, for messages and result files

    def matches(self, block: nn.Module) -> bool:
        return all(_submodule(block, path) is not None for path in (*self.paths.values(), *self.requires))


def _submodule(block: nn.Module, path: str) -> nn.Module | None:
    obj = block
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if not isinstance(obj, nn.Module):
            return None
    return obj


_LAYOUTS: Registry[ProjectionLayout] = Registry("projection layout")


def register_layout(layout: ProjectionLayout, *, replace: bool = False) -> ProjectionLayout:
    """Add a layout; layouts are tried in registration order, the first matching block 0 wins."""
    return _LAYOUTS.register(layout.name, layout, replace=replace)


def _attention(prefix: str, q: str = "q_proj", k: str = "k_proj", v: str = "v_proj", o: str = "o_proj") -> dict:
    return {"q": f"{prefix}.{q}", "k": f"{prefix}.{k}", "v": f"{prefix}.{v}", "o": f"{prefix}.{o}"}


# The built-in families' layouts, registered with their FFN adapters by ``models.architectures`` (one
# registration per architecture); in the order they are tried (the first matching block 0 wins).
BUILTIN_LAYOUTS: dict[str, ProjectionLayout] = {layout.name: layout for layout in (
    ProjectionLayout("llama", {**_attention("self_attn"), "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                               "down": "mlp.down_proj"}),
    ProjectionLayout("phi3", {"qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj", "gate_up": "mlp.gate_up_proj",
                              "down": "mlp.down_proj"}),
    ProjectionLayout("gpt2", {"qkv": "attn.c_attn", "o": "attn.c_proj", "up": "mlp.c_fc", "down": "mlp.c_proj"},
                     transposed=True),
    ProjectionLayout("gpt_neox", {"qkv": "attention.query_key_value", "o": "attention.dense",
                                  "up": "mlp.dense_h_to_4h", "down": "mlp.dense_4h_to_h"}),
    ProjectionLayout("falcon", {"qkv": "self_attention.query_key_value", "o": "self_attention.dense",
                                "up": "mlp.dense_h_to_4h", "down": "mlp.dense_4h_to_h"}),
    ProjectionLayout("opt", {**_attention("self_attn", o="out_proj"), "up": "fc1", "down": "fc2"}),
    ProjectionLayout("moe-attention", _attention("self_attn"), requires=("mlp.experts",),
                     note="attention projections only: the experts are fused parameters, not hookable modules"),
)}


@dataclass(eq=False)
class Projection:
    """One projection of block ``block``: ``kind`` is one of ``KINDS``; ``index`` its place in the list;
    ``transposed``: ``module.weight`` is stored (in, out) (``Conv1D``), else (out, in) (``nn.Linear``)."""

    index: int
    block: int
    kind: str
    name: str
    module: nn.Module
    expert: int | None = None  # CETTCurves reads it (no experts here)
    transposed: bool = False
    _norms: torch.Tensor | None = field(default=None, repr=False)

    @property
    def in_features(self) -> int:
        return self.module.weight.shape[0 if self.transposed else 1]

    @property
    def out_features(self) -> int:
        return self.module.weight.shape[1 if self.transposed else 0]

    @property
    def width(self) -> int:
        return self.in_features

    @property
    def parameters(self) -> int:
        return self.in_features * self.out_features

    def down_weight(self) -> torch.Tensor:
        """``W`` (out, in), the name ``CETTCurves`` asks for (a view for ``Conv1D``)."""
        return self.module.weight.T if self.transposed else self.module.weight

    def down_column_norms(self) -> torch.Tensor:
        """``||W[:, j]||`` per input ``j`` (float32, cached: the weights do not change)."""
        if self._norms is None:
            self._norms = self.down_weight().detach().float().norm(dim=0).cpu().contiguous()
        return self._norms

    def output_without_bias(self, y: torch.Tensor) -> torch.Tensor:
        bias = getattr(self.module, "bias", None)
        return y if bias is None else y - bias


def projection_layout(model: nn.Module) -> ProjectionLayout:
    """The registered layout whose paths block 0 of ``model`` has; ``ModelError`` when none does."""
    blocks = decoder_blocks(model)
    for layout in _LAYOUTS.values():
        if layout.matches(blocks[0]):
            return layout
    raise ModelError(f"input sparsity knows the projections of {', '.join(_LAYOUTS.names())} blocks; "
                     f"{type(model).__name__}'s match none: register a ProjectionLayout for it with its FFN adapter "
                     "(sparsinglaw.models.register_architecture)")


def find_projections(model: nn.Module, kinds: Sequence[str] = KINDS) -> list[Projection]:
    """The projections of every block, block by block in block order, of the kinds in ``kinds`` (all
    ``KINDS``, the default: every projection the model's layout has); ``ModelError`` when the model has no
    known layout or lacks a kind asked for by name."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ModelError(f"unknown projection kind(s) {unknown}; choose from {', '.join(KINDS)}")

    layout = projection_layout(model)
    missing = [k for k in kinds if k not in layout.paths]
    if missing and set(kinds) != set(KINDS):
        raise ModelError(f"{layout.name} blocks have no {', '.join(missing)} projection(s); they have "
                         f"{', '.join(layout.paths)}")
    names = {id(m): n for n, m in model.named_modules()}
    found: list[Projection] = []
    for b, block in enumerate(decoder_blocks(model)):
        for kind, path in layout.paths.items():
            if kind not in kinds:
                continue
            module = _submodule(block, path)
            if getattr(module, "weight", None) is None or module.weight.dim() != 2:
                raise ModelError(f"block {b} has no {layout.name} projection {path} with a 2-d weight")
            found.append(Projection(len(found), b, kind, names[id(module)], module, transposed=layout.transposed))
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


__all__ = ["KINDS", "Projection", "ProjectionLayout", "attach_inputs", "find_projections", "observe_outputs",
           "projection_layout", "register_layout", "require_called"]
