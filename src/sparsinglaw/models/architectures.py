"""One registry of architectures: an architecture is added once and gets every kind of sparsity.

An ``Architecture`` bundles a family's ``adapters.FFNAdapter`` (FFN neurons) and its
``projections.ProjectionLayout`` (projection inputs); ``register_architecture`` adds both::

    register_architecture(Architecture("my-lm", MyAdapter(), (ProjectionLayout("my-lm", {...}),)))

Old names of an architecture resolve through ``aliases``."""

from __future__ import annotations

from dataclasses import dataclass

from sparsinglaw.errors import ConfigError
from sparsinglaw.models.adapters import FFNAdapter, register_adapter
from sparsinglaw.models.llama import LlamaFamilyAdapter
from sparsinglaw.models.moe import MoEAdapter
from sparsinglaw.models.nongated import FalconAdapter, GPT2Adapter, GPTNeoXAdapter, OPTAdapter
from sparsinglaw.models.projections import BUILTIN_LAYOUTS, ProjectionLayout, register_layout
from sparsinglaw.registry import Registry


@dataclass(frozen=True)
class Architecture:
    """A family of models: where its FFN neurons are (``adapter``) and where its projections are
    (``layouts``: a family's blocks may come in several layouts, the Llama family's fused Phi-3 ones)."""

    name: str
    adapter: FFNAdapter
    layouts: tuple[ProjectionLayout, ...]
    aliases: tuple[str, ...] = ()  # other names it answers to (earlier names of the adapter or a layout)


ARCHITECTURES: Registry[Architecture] = Registry("architecture")
_ALIASES: dict[str, str] = {}


def register_architecture(arch: Architecture, *, replace: bool = False) -> Architecture:
    """Add ``arch`` with both of its finders; ``ValueError`` when it has no layout (it would silently lack
    input sparsity) or its name is taken (unless ``replace``)."""
    if not arch.layouts:
        raise ValueError(f"architecture {arch.name!r} has no projection layout: every architecture supports "
                         "both FFN-neuron and projection-input sparsity")
    ARCHITECTURES.register(arch.name, arch, replace=replace)
    register_adapter(arch.adapter, replace=replace)
    for layout in arch.layouts:
        register_layout(layout, replace=replace)
    for alias in arch.aliases:
        _ALIASES[alias] = arch.name
    return arch


def architecture(name: str) -> Architecture:
    """The architecture ``name`` or one of its aliases; ``ConfigError`` listing the known names."""
    try:
        return ARCHITECTURES.get(_ALIASES.get(name, name))
    except ConfigError:
        raise ConfigError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES.names())} "
                          f"(also: {', '.join(sorted(_ALIASES))})") from None


for _arch in (
    Architecture("llama-family", LlamaFamilyAdapter(), (BUILTIN_LAYOUTS["llama"], BUILTIN_LAYOUTS["phi3"]),
                 aliases=("llama", "phi3")),
    Architecture("gpt2", GPT2Adapter(), (BUILTIN_LAYOUTS["gpt2"],)),
    Architecture("gpt-neox", GPTNeoXAdapter(), (BUILTIN_LAYOUTS["gpt_neox"],), aliases=("gpt_neox",)),
    Architecture("opt", OPTAdapter(), (BUILTIN_LAYOUTS["opt"],)),
    Architecture("falcon", FalconAdapter(), (BUILTIN_LAYOUTS["falcon"],)),
    Architecture("moe", MoEAdapter(), (BUILTIN_LAYOUTS["moe-attention"],), aliases=("moe-attention",)),
):
    register_architecture(_arch)

__all__ = ["ARCHITECTURES", "Architecture", "architecture", "register_architecture"]
