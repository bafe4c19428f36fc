"""Corpora, tokenization and evaluation batches."""

from sparsinglaw.data.batches import EvalData, build_eval_data, tokenize_documents
from sparsinglaw.data.corpus import (
    BUILTIN,
    SHAKESPEARE,
    builtin_documents,
    corpus_summary,
    document_split,
    load_documents,
    shipped_documents,
)

__all__ = [
    "BUILTIN",
    "SHAKESPEARE",
    "EvalData",
    "build_eval_data",
    "builtin_documents",
    "corpus_summary",
    "document_split",
    "load_documents",
    "shipped_documents",
    "tokenize_documents",
]
