"""FAT-epsilon (flat absolute threshold, docs/paper.md section 2): inactive iff |s_i| < epsilon, one epsilon for
all layers."""

from __future__ import annotations

from sparsinglaw.errors import ConfigError
from sparsinglaw.metrics.base import Applied, SparsityMetric, register_metric


class FAT(SparsityMetric):
    """FAT-epsilon: inactive iff |s_i| < epsilon (same epsilon in every layer)."""

    name = "fat"
    parameter = "epsilon"
    sweep_values = (1e-3, 3e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)

    def apply(self, value, *, curves=None, layers=None) -> Applied:
        if value is None or not value >= 0.0:
            raise ConfigError(f"FAT --epsilon must be >= 0, got {value}")
        return Applied(
            rule=lambda layer, h, s: s.abs() >= value,
            setting={"epsilon": value},
            threshold_rule=f"zero s_i where |s_i| < {value}",
        )


register_metric(FAT())
