"""The ranking and correlation metrics of everything that scores a model here (dev scores, the backbone swap's
comparison, the demo's labelled queries); the MTEB evaluation uses mteb's own, which agree with these.

Binary relevance throughout; numpy only (this runs on the GPU machine too).
"""
from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np

TOP_K = 10


def ranking_metrics(ranked: Sequence[Hashable], relevant: set, k: int = TOP_K) -> dict[str, float]:
    """nDCG@k, recall@k and MRR@k of one ranked list of ids against the set of relevant ids."""
    gains = [1.0 if doc in relevant else 0.0 for doc in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    first = next((i for i, g in enumerate(gains) if g), None)
    return {f"nDCG@{k}": dcg / ideal if ideal else 0.0,
            f"recall@{k}": sum(gains) / len(relevant) if relevant else 0.0,
            f"MRR@{k}": 1.0 / (first + 1) if first is not None else 0.0}


def mean_ranking_metrics(scores: np.ndarray, relevant: list[set[int]], k: int = TOP_K) -> dict[str, float]:
    """ranking_metrics averaged over the rows of a (queries, documents) score matrix (ties: lower index first)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = [ranking_metrics(row.tolist(), rel, k) for row, rel in zip(top, relevant)]
    return {name: float(np.mean([row[name] for row in rows])) for name in rows[0]} if rows else {}


def average_ranks(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def spearman(x, y) -> float:
    """Pearson correlation of the average ranks; 0.0 when either side is constant (no ordering at all)."""
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else 0.0
