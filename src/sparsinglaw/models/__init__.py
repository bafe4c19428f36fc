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
from sparsinglaw.models.moe import ExpertFFNLayer, MoEAdapter
from sparsinglaw.models.nongated import FalconAdapter, GPT2Adapter, GPTNeoXAdapter, OPTAdapter

for _adapter in (LlamaFamilyAdapter(), GPT2Adapter(), GPTNeoXAdapter(), OPTAdapter(), FalconAdapter(), MoEAdapter()):
    register_adapter(_adapter)

__all__ = [
    "ExpertFFNLayer",
    "FFNAdapter",
    "FFNLayer",
    "ModuleFFNLayer",
    "adapter_for",
    "find_ffn_layers",
    "register_adapter",
    "registered_adapters",
]
