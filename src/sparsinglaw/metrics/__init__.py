"""Sparsity metrics, one registered metric per module (docs/paper.md section 2)."""

from sparsinglaw.metrics import cett, fat, straightforward, topk  # noqa: F401  (registers the metrics)
from sparsinglaw.metrics.base import (
    Applied,
    Solved,
    SparsityMetric,
    get_metric,
    metric_names,
    register_metric,
)


class _PPLP(cett.CETT):
    """PPL-p%: the CETT at which perplexity rises by p%, found by search (see metrics.pplp)."""

    name = "pplp"
    parameter = "p"
    sweep_values = ()

    def solve(self, measurement):
        from sparsinglaw.metrics import pplp_solve  # imports the trend fit (scipy) only when solving

        return pplp_solve.solve(measurement)


register_metric(_PPLP())

__all__ = ["Applied", "Solved", "SparsityMetric", "get_metric", "metric_names", "register_metric"]
