"""Straightforward sparsity (docs/paper.md section 2): a neuron is inactive iff its activation output is zero.

Only meaningful for ReLU-family activations, where exact zeros occur. Zeroing what is already zero cannot
change the output, so this metric needs no sparse pass: the PPL ratio is exactly 1.
"""

from __future__ import annotations

from sparsinglaw.metrics.base import Applied, SparsityMetric, register_metric


class Straightforward(SparsityMetric):
    """Zero count: inactive iff s_i == 0 (ReLU-family models)."""

    name = "zero"

    def apply(self, value=None, *, curves=None, layers=None) -> Applied:
        return Applied(
            rule=lambda layer, h, s: s != 0,
            setting={},
            threshold_rule="inactive iff s_i == 0",
            changes_output=False,
        )


register_metric(Straightforward())
