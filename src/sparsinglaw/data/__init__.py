"""Corpora, tokenization and evaluation batches."""

from sparsinglaw.data.batches import EvalData, build_eval_data, tokenize_documents
from sparsinglaw.data.corpus import (
    BUILTIN,
    ENGLISH,
    SHAKESPEARE,
    builtin_documents,
    corpus_summary,
    document_split,
    english_documents,
    load_documents,
    shipped_documents,
)

__all__ = [
    "BUILTIN",
    "ENGLISH",
    "SHAKESPEARE",
    "EvalData",
    "build_eval_data",
    "builtin_documents",
    "corpus_summary",
    "document_split",
    "english_documents",
    "load_documents",
    "shipped_documents",
    "tokenize_documents",
]
