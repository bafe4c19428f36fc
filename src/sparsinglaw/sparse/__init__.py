"""Sparse FFN inference: compute only the neurons the thresholds keep.

``sparsify(model, thresholds)`` swaps every FFN for an exact sparse one (``sparse.input_sparse``: every
projection), ``restore(model)`` swaps back, ``SparsePolicy`` says when either falls back to dense;
``sparsinglaw.sparse.speed`` measures decode tokens/s and module latency, dense versus sparse.
"""

from sparsinglaw.sparse.convert import SparseHandle, restore, sparsify
from sparsinglaw.sparse.ffn import FFNCounts, SparseFFN, SparseGatedFFN, SparseNonGatedFFN
from sparsinglaw.sparse.modules import SparsePolicy, resolve_policy

__all__ = [
    "FFNCounts",
    "SparseFFN",
    "SparseGatedFFN",
    "SparseHandle",
    "SparseNonGatedFFN",
    "SparsePolicy",
    "resolve_policy",
    "restore",
    "sparsify",
]
