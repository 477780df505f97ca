"""BM25 with the bm25s library: lowercase, English stopwords, Snowball stemming when PyStemmer is
installed (it is optional: without it, words are matched unstemmed).

bm25s's defaults (Lucene's BM25 variant, k1=1.5, b=0.75) are kept. BEIR's published BM25 figures
come from Elasticsearch instead, which stems with its English analyzer and matches title and text
as separate fields; docs/benchmarks.md compares the two on SciFact.
"""
from __future__ import annotations

import hashlib

import numpy as np

K1, B = 1.5, 0.75


def english_stemmer():
    """PyStemmer's English (Porter 2) stemmer, or None when the package is not installed."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english").stemWord


class BM25Search:
    """Index a corpus, then return each query's top documents with their BM25 scores."""

    name = "bm25"

    def __init__(self, stem: bool = True):
        import bm25s

        self.stemmer = english_stemmer() if stem else None
        settings = f"bm25s {bm25s.__version__} lucene k1={K1} b={B} stopwords=en stem={self.stemmer is not None}"
        self.fingerprint = hashlib.sha256(settings.encode()).hexdigest()[:16]
        self.description = settings
        self._retriever = None
        self._ids: list[str] = []

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=self.stemmer, return_ids=False,
                              show_progress=False)

    def index(self, ids: list[str], documents: list[str]) -> None:
        import bm25s

        self._retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
        self._retriever.index(self._tokenize(documents), show_progress=False)
        self._ids = list(ids)

    def search(self, queries: list[str], top_k: int = 100) -> list[dict[str, float]]:
        """For each query, {doc id: score} of its top_k documents; documents sharing no term are left out."""
        if self._retriever is None:
            raise RuntimeError("index() a corpus before search()")
        if not queries:
            return []
        k = min(top_k, len(self._ids))
        rows, scores = self._retriever.retrieve(self._tokenize(queries), k=k, show_progress=False)
        return [{self._ids[i]: float(s) for i, s in zip(row, score) if s > 0}
                for row, score in zip(np.asarray(rows), np.asarray(scores))]
