"""sparsinglaw: measure, predict and exploit activation sparsity in decoder-only LLMs."""

__version__ = "0.1.0"
