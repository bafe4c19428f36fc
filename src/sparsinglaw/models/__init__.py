"""Model access: one registry of architectures (``models.architectures``: each finds its FFN neurons and its
projections), and model loading."""

from sparsinglaw.models.adapters import (
    FFNAdapter,
    FFNLayer,
    ModuleFFNLayer,
    adapter_for,
    find_ffn_layers,
    register_adapter,
    registered_adapters,
)
from sparsinglaw.models.architectures import (  # the built-ins
    Architecture,
    architecture,
    register_architecture,
)
from sparsinglaw.models.moe import ExpertFFNLayer

__all__ = [
    "Architecture",
    "ExpertFFNLayer",
    "FFNAdapter",
    "FFNLayer",
    "ModuleFFNLayer",
    "adapter_for",
    "architecture",
    "find_ffn_layers",
    "register_adapter",
    "register_architecture",
    "registered_adapters",
]
