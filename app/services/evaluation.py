"""Scoring a model on a collection's own labelled queries (searched through the indexer) or on a BEIR folder."""
from __future__ import annotations

import time
from pathlib import Path

from indexer.collection import Hit, Store
from training.evaluation.data import read_jsonl
from training.evaluation.encoders import CachedEncoder, EmbedderEncoder
from training.evaluation.metrics import ranking_metrics
from training.evaluation.runner import EvalRequest, cache_dir, evaluate

from .progress import Reporter
from .search import search

METRICS = ("nDCG@10", "recall@10", "MRR@10")


def read_labelled_queries(path: Path) -> list[dict]:
    """Lines of {"query": ..., "relevant": [document path or key, ...]}."""
    rows = []
    for number, row in enumerate(read_jsonl(path, ("query", "relevant")), 1):
        if not isinstance(row["query"], str) or not row["relevant"]:
            raise ValueError(f'{path}: record {number}: expected {{"query": "...", "relevant": ["path", ...]}}')
        relevant = row["relevant"] if isinstance(row["relevant"], list) else [row["relevant"]]
        rows.append({"query": row["query"], "relevant": [str(r) for r in relevant]})
    return rows


def documents_in_order(hits: list[Hit]) -> list[str]:
    """The hits' document paths, each once, in rank order."""
    return list(dict.fromkeys(hit.path for hit in hits))


def evaluate_on_collection(store: Store, collection: str, model, instruction: str | None, queries: list[dict],
                           reporter: Reporter | None = None, mode: str = "semantic") -> dict:
    """Mean metrics over labelled queries, searched through the indexer, and the mean search latency."""
    totals = dict.fromkeys(METRICS, 0.0)
    latencies = []
    for row in queries:
        if reporter is not None:
            reporter.check()
        started = time.perf_counter()
        hits = search(store, collection, row["query"], model, instruction, k=40, mode=mode).hits
        latencies.append(time.perf_counter() - started)
        for name, value in ranking_metrics(documents_in_order(hits), set(row["relevant"])).items():
            totals[name] += value
    scores = {name: value / len(queries) for name, value in totals.items()}
    scores["latency_ms"] = 1000 * sum(latencies) / len(latencies)
    return scores


def evaluate_on_beir(folder: str, model, label: str, split: str = "test") -> dict:
    """nDCG@10, recall@10, MRR@10 with the MTEB evaluation on a BEIR folder."""
    encoder = CachedEncoder(EmbedderEncoder(model, label), cache_dir("embeddings"), model.device.type)
    result = evaluate(EvalRequest(model=label, task="retrieval", data=folder, split=split), model=encoder)
    scores = result["scores"]
    return {"nDCG@10": scores["ndcg_at_10"], "recall@10": scores["recall_at_10"], "MRR@10": scores["mrr_at_10"]}
