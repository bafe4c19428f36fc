"""Model access: FFN discovery through a registry of architecture adapters, and model loading."""

from sparsinglaw.models.adapters import (
    FFNAdapter,
    FFNLayer,
    ModuleFFNLayer,
    adapter_for,
    find_ffn_layers,
    register_adapter,
    registered_adapters,
)
from sparsinglaw.models.llama import LlamaFamilyAdapter

register_adapter(LlamaFamilyAdapter())

__all__ = [
    "FFNAdapter",
    "FFNLayer",
    "ModuleFFNLayer",
    "adapter_for",
    "find_ffn_layers",
    "register_adapter",
    "registered_adapters",
]
