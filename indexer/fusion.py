"""Hybrid ranking: reciprocal-rank fusion (Cormack et al., 2009) of a semantic and a keyword ranking.

RRF reads only ranks, so it needs no calibration between cosine similarities and BM25 scores, which
live on unrelated scales: score(d) = sum over rankings of weight / (RRF_K + rank(d)), rank from 1.
A document missing from one ranking simply gets nothing from it. RRF_K = 60 is the paper's constant
(Elasticsearch's and Weaviate's default too); it was not tuned here.
"""
from __future__ import annotations

from typing import Hashable, Sequence

MODES = ("hybrid", "semantic", "keyword")
SCORE_MEANING = {"semantic": "cosine similarity of query and passage embeddings (-1 to 1)",
                 "keyword": "BM25 of the query's words in the passage (0 and up)",
                 "hybrid": "reciprocal-rank fusion of the semantic and keyword ranks (at most 1/61)"}
RRF_K = 60
DEFAULT_KEYWORD_WEIGHT = 0.5  # the keyword side's share; the semantic side gets 1 - weight


def check_weight(keyword_weight: float) -> float:
    if not 0.0 <= keyword_weight <= 1.0:
        raise ValueError(f"the keyword weight must be between 0 and 1, not {keyword_weight}")
    return float(keyword_weight)


def reciprocal_rank_fusion(semantic: Sequence[Hashable], keyword: Sequence[Hashable],
                           keyword_weight: float = DEFAULT_KEYWORD_WEIGHT) -> list[tuple[Hashable, float]]:
    """(item, fused score) best first, from two rankings given best first. Ties keep the semantic order."""
    check_weight(keyword_weight)
    scores: dict[Hashable, float] = {}
    for ranking, weight in ((semantic, 1.0 - keyword_weight), (keyword, keyword_weight)):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
