"""Non-gated FFNs, ``W_out act(W_in x)``: GPT-2, GPT-NeoX/Pythia, OPT and Falcon.

Here the activation output is the down projection's input, so ``s is h`` (docs/paper.md section 1) and only the
down projection is hooked. The families differ in where the FFN lives (an ``mlp`` child or the decoder
layer itself) and in how the down weight is stored: GPT-2's ``Conv1D`` keeps ``(d_f, d_model)``, the
transpose of ``nn.Linear``, so its ``W_down`` is ``c_proj.weight.T``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sparsinglaw.models.adapters import FFNAdapter, FFNLayer, ModuleFFNLayer, decoder_blocks, linear_weight


def conv1d_weight(module: nn.Module) -> Callable[[], torch.Tensor]:
    """``W_down`` getter for GPT-2's ``Conv1D``, whose weight is stored as ``(d_f, d_model)``."""
    return lambda: module.weight.T


class NonGatedAdapter(FFNAdapter):
    """Shared discovery: per block, ``ffn_path`` (relative to the block) holds ``down_name``.

    Subclasses set ``ffn_path`` ("" for the block itself), ``down_name`` and ``transposed`` (Conv1D).
    """

    ffn_path: str = "mlp"
    down_name: str = ""
    transposed: bool = False

    def find_layers(self, model: nn.Module) -> list[FFNLayer]:
        layers: list[FFNLayer] = []
        for block_index, block in enumerate(decoder_blocks(model)):
            ffn = getattr(block, self.ffn_path) if self.ffn_path else block
            down = getattr(ffn, self.down_name, None) if ffn is not None else None
            if down is None:
                continue
            width = down.weight.shape[0] if self.transposed else down.in_features
            suffix = f".{self.ffn_path}" if self.ffn_path else ""
            layers.append(
                ModuleFFNLayer(
                    index=len(layers),
                    name=f"layers.{block_index}{suffix}",
                    block=block_index,
                    width=width,
                    gated=False,
                    down=down,
                    act=None,
                    weight_fn=conv1d_weight(down) if self.transposed else linear_weight(down),
                )
            )
        return layers


class GPT2Adapter(NonGatedAdapter):
    """GPT-2 family: ``mlp.c_proj`` is a ``Conv1D`` (transposed weight)."""

    name = "gpt2"
    model_types = ("gpt2",)
    down_name = "c_proj"
    transposed = True


class GPTNeoXAdapter(NonGatedAdapter):
    """GPT-NeoX and Pythia: ``mlp.dense_4h_to_h``."""

    name = "gpt-neox"
    model_types = ("gpt_neox",)
    down_name = "dense_4h_to_h"


class FalconAdapter(NonGatedAdapter):
    """Falcon: ``mlp.dense_4h_to_h`` (a ``FalconLinear``, an ``nn.Linear`` subclass)."""

    name = "falcon"
    model_types = ("falcon",)
    down_name = "dense_4h_to_h"


class OPTAdapter(NonGatedAdapter):
    """OPT: ``fc1``/``activation_fn``/``fc2`` sit directly in the decoder layer, not in an ``mlp`` child."""

    name = "opt"
    model_types = ("opt",)
    ffn_path = ""
    down_name = "fc2"
