"""Corpora, tokenization and evaluation batches."""

from sparsinglaw.data.batches import EvalData, build_eval_data, tokenize_documents
from sparsinglaw.data.corpus import BUILTIN, builtin_documents, document_split, load_documents

__all__ = [
    "BUILTIN",
    "EvalData",
    "build_eval_data",
    "builtin_documents",
    "document_split",
    "load_documents",
    "tokenize_documents",
]
