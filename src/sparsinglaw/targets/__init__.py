"""Kinds of sparsity as target specs (``base.TargetSpec``), registered by name in ``TARGETS``: FFN neurons
(``ffn-neurons``, the paper's output sparsity) and projection inputs (``projection-inputs``, input
sparsity). docs/architecture.md, "Targets"."""

from sparsinglaw.targets.base import TARGETS, TargetSpec, combined, register_target, target
from sparsinglaw.targets.ffn_neurons import FFN_NEURONS, FFNNeurons
from sparsinglaw.targets.projection_inputs import PROJECTION_INPUTS, ProjectionInputs

__all__ = ["FFNNeurons", "FFN_NEURONS", "PROJECTION_INPUTS", "ProjectionInputs", "TARGETS", "TargetSpec",
           "combined", "register_target", "target"]
