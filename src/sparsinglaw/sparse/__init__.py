"""Sparse FFN inference: compute only the neurons the thresholds keep.

``sparsify(model, thresholds)`` swaps every FFN for an exact sparse one, ``restore(model)`` swaps back;
``sparsinglaw.sparse.speed`` measures decode tokens/s and FFN latency, dense versus sparse.
"""

from sparsinglaw.sparse.convert import SparseHandle, restore, sparse_ffn, sparsify
from sparsinglaw.sparse.ffn import FFNCounts, SparseFFN, SparseGatedFFN, SparseNonGatedFFN, SparsePolicy

__all__ = [
    "FFNCounts",
    "SparseFFN",
    "SparseGatedFFN",
    "SparseHandle",
    "SparseNonGatedFFN",
    "SparsePolicy",
    "restore",
    "sparse_ffn",
    "sparsify",
]
