"""Gated Llama-family FFNs: ``down_proj(act_fn(gate_proj(x)) * up_proj(x))``.

Covers Llama, Mistral, Qwen2/3, Gemma 1-3, Granite, OLMo, SmolLM and Phi-3 (whose gate and up projections
are fused into ``gate_up_proj`` and whose activation module is ``activation_fn``).
"""

from __future__ import annotations

from torch import nn

from sparsinglaw.models.adapters import FFNAdapter, FFNLayer, ModuleFFNLayer, decoder_blocks, linear_weight


class LlamaFamilyAdapter(FFNAdapter):
    name = "llama-family"
    model_types = (
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "granite",
        "olmo", "olmo2", "smollm3", "phi3", "cohere", "stablelm", "starcoder2_gated",
    )

    def find_layers(self, model: nn.Module) -> list[FFNLayer]:
        layers: list[FFNLayer] = []
        for block_index, block in enumerate(decoder_blocks(model)):
            mlp = getattr(block, "mlp", None)
            if mlp is None or not hasattr(mlp, "down_proj"):
                continue
            act = getattr(mlp, "act_fn", None) or getattr(mlp, "activation_fn", None)
            layers.append(
                ModuleFFNLayer(
                    index=len(layers),
                    name=f"layers.{block_index}.mlp",
                    block=block_index,
                    width=mlp.down_proj.in_features,
                    gated=True,
                    down=mlp.down_proj,
                    act=act,
                    weight_fn=linear_weight(mlp.down_proj),
                )
            )
        return layers
