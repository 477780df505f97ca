"""What an embedder is to the rest of the project: the indexer and the evaluation type against this, and
PromptEmbedder, the evaluation's baselines (all-MiniLM-L6-v2, precomputed vectors) and the app's small
wrappers implement it. numpy only: importing it loads no model code."""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    fingerprint: str  # changes whenever the vectors would: indexes and caches are keyed by it
    dimension: int

    def encode(self, texts: Sequence[str], instruction: str | None = None, **options: Any) -> np.ndarray:
        """Query vectors, (len(texts), dimension) float32, unit length; instruction None: the embedder's own."""

    def encode_document(self, texts: Sequence[str], instruction: str | None = None, **options: Any) -> np.ndarray:
        """Document vectors, as encode."""


@runtime_checkable
class TokenizingEmbedder(Embedder, Protocol):
    """An Embedder whose tokenizer the indexer cuts documents with (chunks measured in the model's tokens)."""

    tokenizer: Any
