"""Finding each layer's FFN parts in any architecture: the ``FFNLayer`` contract and the adapter registry.

An FFN computes ``h = act(W_gate x) * (W_up x)`` (gated) or ``h = act(W_in x)``, then ``y = W_down h``
(docs/paper.md section 1). An adapter knows where ``s``, ``h`` and ``W_down`` live in one family and returns
one ``FFNLayer`` per FFN (per expert for mixture-of-experts models). A new family: subclass ``FFNAdapter``
and register it with its projection layout (``models.architectures.register_architecture``);
``register_adapter`` alone gives FFN neurons only:

>>> from types import SimpleNamespace
>>> from torch import nn
>>> class ToyLM(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.config = SimpleNamespace(model_type="toy")
...         self.ffn = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
>>> class ToyAdapter(FFNAdapter):
...     name, model_types = "toy", ("toy",)
...     def find_layers(self, model):
...         down = model.ffn[2]
...         return [ModuleFFNLayer(index=0, name="ffn", block=0, width=16, gated=False, down=down,
...                                act=None, weight_fn=linear_weight(down))]
>>> _ = register_adapter(ToyAdapter())
>>> find_ffn_layers(ToyLM())
[ModuleFFNLayer(ffn, d_f=16, non-gated)]
>>> _ = _REGISTRY.unregister("toy")  # doctests share one process: leave the registry as found"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

from sparsinglaw.errors import ModelError
from sparsinglaw.registry import Registry

# Called once per FFN forward with the down projection's input ``h`` (shape ``(..., d_f)``) and the
# activation output ``s`` (same shape; ``s is h`` for non-gated FFNs). Returning a tensor replaces ``h``
# for the rest of the forward (this is how sparsification is applied); returning None leaves it.
HCallback = Callable[["FFNLayer", torch.Tensor, torch.Tensor], "torch.Tensor | None"]


class Handle(Protocol):
    def remove(self) -> None: ...


class FFNLayer(ABC):
    """One FFN block (or one expert of a mixture-of-experts block) that metrics can observe and sparsify.
    ``attach(callback)``: every forward calls ``callback(self, h, s)`` once with the dense ``h`` about to
    enter the down projection and uses the returned tensor (if any); ``down_weight()``: ``W_down`` as
    ``(d_model, d_f)``."""

    def __init__(self, *, index: int, name: str, block: int, width: int, gated: bool, expert: int | None = None):
        self.index = index  # position among the measured FFNs, 0..n-1
        self.name = name  # module path, for messages and result files
        self.block = block  # transformer block index
        self.width = width  # d_f, the number of neurons
        self.gated = gated
        self.expert = expert  # expert id inside an MoE block, else None

    @abstractmethod
    def down_weight(self) -> torch.Tensor:
        """``W_down`` as ``(d_model, d_f)``."""

    @abstractmethod
    def attach(self, callback: HCallback) -> Handle:
        """Install the hooks; the returned handle's ``remove()`` detaches all of them."""

    # Whether ``attach_output`` is supported (the down projection is a module whose output is ``y``).
    observes_output = False

    def attach_output(self, callback: HCallback) -> Handle:
        """Call ``callback(self, h, y)`` after every forward of the down projection, with its input ``h`` and
        its output ``y = W_down h`` without bias (saves recomputing ``y``); the return value is ignored."""
        raise ModelError(f"{type(self).__name__} cannot hook the down projection's output; use attach()")

    def down_column_norms(self) -> torch.Tensor:
        """``||W_down[:, i]||`` for each neuron, float32, shape ``(d_f,)``."""
        with torch.no_grad():
            return self.down_weight().detach().float().norm(dim=0)

    def __repr__(self) -> str:
        kind = "gated" if self.gated else "non-gated"
        return f"{type(self).__name__}({self.name}, d_f={self.width}, {kind})"


class _HandleGroup:
    def __init__(self, handles: Sequence[Handle]):
        self._handles = list(handles)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


class ModuleFFNLayer(FFNLayer):
    """An FFN whose down projection and activation are modules: ``act`` gives ``s`` (None for non-gated
    FFNs, where ``s`` is ``h``); ``weight_fn`` returns ``W_down`` as ``(d_model, d_f)``."""

    def __init__(self, *, down: nn.Module, act: nn.Module | None, weight_fn: Callable[[], torch.Tensor], **kw):
        super().__init__(**kw)
        self.down = down
        self.act = act
        self._weight_fn = weight_fn

    def down_weight(self) -> torch.Tensor:
        return self._weight_fn()

    def attach(self, callback: HCallback) -> Handle:
        seen: dict[str, torch.Tensor] = {}

        def keep_s(_module, _args, output):
            seen["s"] = output

        def on_down_input(_module, args):
            h = args[0]
            s = seen.pop("s", None) if self.act is not None else h
            if s is None or s.shape != h.shape:
                # The activation output did not reach the down projection as expected (e.g. a fused
                # kernel skipped the act module): fall back to h, which is correct for s != 0 tests only
                # where act(0) == 0; metrics that rank by s document this.
                s = h
            new_h = callback(self, h, s)
            if new_h is None:
                return None
            return (new_h, *args[1:])

        handles = [self.down.register_forward_pre_hook(on_down_input)]
        if self.act is not None:
            handles.append(self.act.register_forward_hook(keep_s))
        return _HandleGroup(handles)

    observes_output = True

    def attach_output(self, callback: HCallback) -> Handle:
        bias = getattr(self.down, "bias", None)

        def on_down_output(_module, args, output):
            callback(self, args[0], output if bias is None else output - bias)

        return self.down.register_forward_hook(on_down_output)


class FFNAdapter(ABC):
    """Knows where the FFN parts of one family of architectures live: ``name``, ``model_types`` (values of
    ``config.model_type``) and ``find_layers``."""

    name: str = ""
    model_types: tuple[str, ...] = ()

    def matches(self, model: nn.Module) -> bool:
        return getattr(getattr(model, "config", None), "model_type", None) in self.model_types

    @abstractmethod
    def find_layers(self, model: nn.Module) -> list[FFNLayer]:
        """All FFNs of ``model`` in forward order (per expert for MoE models)."""


# Adapters are tried in registration order by ``adapter_for`` (sparsinglaw.registry: duplicates are a
# ValueError unless replace=True).
_REGISTRY: Registry[FFNAdapter] = Registry("adapter")


def register_adapter(adapter: FFNAdapter, *, replace: bool = False) -> FFNAdapter:
    """Add an adapter to the registry (``replace=True`` to override one with the same name)."""
    return _REGISTRY.register(adapter.name, adapter, replace=replace)


def registered_adapters() -> dict[str, FFNAdapter]:
    return dict(_REGISTRY.items())


def adapter_for(model: nn.Module) -> FFNAdapter:
    """The registered adapter for ``model``, or a ModelError naming its class and how to add one."""
    for adapter in _REGISTRY.values():
        if adapter.matches(model):
            return adapter
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    raise ModelError(
        f"no FFN adapter for {type(model).__name__} (model_type={model_type!r}); supported: "
        f"{', '.join(sorted(t for a in _REGISTRY.values() for t in a.model_types))}. Register one with "
        "sparsinglaw.models.register_adapter(MyAdapter()) (see sparsinglaw.models.adapters.FFNAdapter)"
    )


def find_ffn_layers(model: nn.Module) -> list[FFNLayer]:
    """Every FFN of ``model``; a ModelError if the adapter finds none."""
    adapter = adapter_for(model)
    layers = adapter.find_layers(model)
    if not layers:
        raise ModelError(
            f"adapter {adapter.name!r} found no FFN layers in {type(model).__name__}; "
            "is this a decoder-only causal LM?"
        )
    return layers


def decoder_blocks(model: nn.Module) -> Sequence[nn.Module]:
    """The list of transformer blocks of common causal-LM layouts (``model.layers``, ``transformer.h``, ...)."""
    base = getattr(model, "base_model", model)
    for path in ("layers", "h", "decoder.layers", "model.layers", "transformer.h", "gpt_neox.layers"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    raise ModelError(f"cannot find the transformer blocks of {type(model).__name__}; register an FFN adapter")


def linear_weight(module: nn.Module) -> Callable[[], torch.Tensor]:
    """``W_down`` getter for an ``nn.Linear`` (already ``(d_model, d_f)``)."""
    return lambda: module.weight
