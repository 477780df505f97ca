"""Dev scores the trainer logs: retrieval on the held-out dev records, and STS Benchmark Spearman.

Retrieval, per task of the dev records: the task's dev queries search a corpus made of every
positive and negative of that task's dev records, optionally extended by a BEIR corpus (documents
formed the way training/data.py forms BEIR positives, so a positive is found again by its text).
A query's relevant documents are its positives; scores are nDCG@10 (binary relevance) and
recall@10. STS: Spearman of cosine similarity against the gold scores. Both use the model's own
encode / encode_document with the records' instructions, as the trained model will be used.

Pure torch + numpy: this runs on the GPU machine (no mteb, faiss or scipy there).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import Record, read_beir_corpus
from .errors import TrainingError
from .evaluation.data import query_instruction, read_sts
from .evaluation.metrics import TOP_K, mean_ranking_metrics, spearman
from .formats import PairData


@dataclass
class RetrievalSet:
    queries: list[str]
    instructions: list[str]  # one per query (its records' instruction)
    relevant: list[set[int]]  # per query: indexes of its positives in corpus
    corpus: list[str]


@dataclass
class DevSet:
    """What is scored, read once per run (bad paths fail before training starts, not at the first eval)."""

    retrieval: dict[str, RetrievalSet] = field(default_factory=dict)
    sts: PairData | None = None
    sts_instruction: str = ""

    def __bool__(self) -> bool:
        return bool(self.retrieval) or self.sts is not None


def dev_corpora(specs: list[str]) -> dict[str, str]:
    """--dev-corpus's TASK=PATH specs as {task: path}; a malformed one is a clear error."""
    corpora = {}
    for spec in specs:
        task, sep, path = spec.partition("=")
        if not (sep and task and path):
            raise ValueError(f"dev corpus {spec!r}: expected TASK=PATH, e.g. beir:scifact=data/scifact/corpus.jsonl")
        corpora[task] = path
    return corpora


def build_dev_set(dev_records: list[Record], extra_corpora: dict[str, str | Path] | None = None,
                  sts_path: str | Path | None = None, max_queries: int = 200, retrieval: bool = True,
                  max_sts_pairs: int | None = None, shorten=None) -> DevSet:
    """shorten: a function applied to every retrieval corpus (the trainer cuts documents to its document length).
    max_sts_pairs: a fixed subset of the STS pairs (the smallest hashes), whatever the file order."""
    by_task: dict[str, list[Record]] = {}
    for record in dev_records:
        by_task.setdefault(record.task, []).append(record)
    extra_corpora = extra_corpora or {}
    unknown = sorted(set(extra_corpora) - set(by_task))
    if retrieval and unknown:
        raise TrainingError(f"dev corpus given for task(s) {', '.join(unknown)}, but the dev records have "
                            f"task(s): {', '.join(sorted(by_task)) or 'none (no dev records)'}")
    dev_set = DevSet()
    if retrieval:
        for task, records in by_task.items():
            extra = read_beir_corpus(Path(extra_corpora[task])) if task in extra_corpora else []
            if task in extra_corpora and not extra:
                raise TrainingError(f"{extra_corpora[task]}: no documents (expected BEIR corpus.jsonl lines "
                                    "with _id, title, text)")
            dev_set.retrieval[task] = retrieval_set(records, extra, max_queries)
            if shorten is not None:
                data = dev_set.retrieval[task]
                data.corpus = shorten(data.corpus)
    if sts_path is not None:
        if "test" in Path(sts_path).name.lower():
            raise TrainingError(f"{sts_path}: a test split; dev scores choose settings, so they must not see test data")
        dev_set.sts = read_sts(sts_path, split="dev")
        if max_sts_pairs is not None and len(dev_set.sts.scores) > max_sts_pairs:
            dev_set.sts = sts_subset(dev_set.sts, max_sts_pairs)
        dev_set.sts_instruction = query_instruction("sts", sts_path)
    return dev_set


def retrieval_set(records: list[Record], extra_corpus: list[str], max_queries: int) -> RetrievalSet:
    """Deduplicated corpus; records that share a query (BEIR: one per relevant document) pool their positives.

    Beyond max_queries, a fixed subset of queries (the smallest hashes, whatever the record order) and a
    corpus of their own positives and negatives (plus the extra corpus): the cost stays bounded."""
    queries = list(dict.fromkeys(r.query for r in records))
    if len(queries) > max_queries:
        queries = sorted(queries, key=_hash)[:max_queries]
        chosen = set(queries)
        records = [r for r in records if r.query in chosen]
    texts = [text for r in records for text in (r.positive, *r.negatives)] + extra_corpus
    corpus = list(dict.fromkeys(texts))
    index = {text: i for i, text in enumerate(corpus)}
    by_query: dict[str, tuple[str, set[int]]] = {}
    for r in records:
        by_query.setdefault(r.query, (r.instruction, set()))[1].add(index[r.positive])
    return RetrievalSet(queries, [by_query[q][0] for q in queries], [by_query[q][1] for q in queries], corpus)


def _hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def sts_subset(data: PairData, count: int) -> PairData:
    """A fixed subset of STS pairs: the smallest hashes of (first, second)."""
    keep = sorted(range(len(data.scores)), key=lambda i: _hash(data.first[i] + "\t" + data.second[i]))[:count]
    keep.sort()
    return PairData([data.first[i] for i in keep], [data.second[i] for i in keep], [data.scores[i] for i in keep])


def metric_label(key: str) -> tuple[str, str]:
    """'dev/beir:scifact/ndcg_at_10' -> ('beir:scifact', 'ndcg@10'): how logs and tables show a dev score."""
    task, metric = key[len("dev/"):].rsplit("/", 1)
    return task, metric.replace("_at_", "@")


# ----- scoring --------------------------------------------------------------------------------
def _encode_queries(model, data: RetrievalSet, batch_size: int) -> np.ndarray:
    vectors = [None] * len(data.queries)
    for instruction in dict.fromkeys(data.instructions):
        rows = [i for i, ins in enumerate(data.instructions) if ins == instruction]
        encoded = model.encode([data.queries[i] for i in rows], instruction=instruction, batch_size=batch_size)
        for i, vector in zip(rows, encoded):
            vectors[i] = vector
    return np.stack(vectors)


def retrieval_scores(model, data: RetrievalSet, batch_size: int = 32) -> tuple[float, float]:
    scores = _encode_queries(model, data, batch_size) @ model.encode_document(data.corpus, batch_size=batch_size).T
    index = {text: i for i, text in enumerate(data.corpus)}
    for row, (query, rel) in enumerate(zip(data.queries, data.relevant)):
        if query in index and index[query] not in rel:
            scores[row, index[query]] = -np.inf  # the query itself is no answer (BEIR skips same-id hits too)
    metrics = mean_ranking_metrics(scores, data.relevant, TOP_K)
    return metrics[f"nDCG@{TOP_K}"], metrics[f"recall@{TOP_K}"]


def score_dev_set(model, dev_set: DevSet, batch_size: int = 32) -> dict[str, float]:
    """Scores in eval mode without gradients; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    scores, main = {}, []
    try:
        with torch.no_grad():
            for task, data in dev_set.retrieval.items():
                ndcg, recall = retrieval_scores(model, data, batch_size)
                scores[f"dev/{task}/ndcg_at_10"], scores[f"dev/{task}/recall_at_10"] = ndcg, recall
                main.append(ndcg)
            if dev_set.sts is not None:
                sts = dev_set.sts
                first = model.encode(sts.first, instruction=dev_set.sts_instruction, batch_size=batch_size)
                second = model.encode(sts.second, instruction=dev_set.sts_instruction, batch_size=batch_size)
                scores["dev/sts/spearman"] = spearman((first * second).sum(1), sts.scores)  # unit vectors: cosine
                main.append(scores["dev/sts/spearman"])
    finally:
        model.train(was_training)
    if main:
        scores["dev/score"] = float(np.mean(main))
    return scores


def dev_scores(model, dev_records: list[Record], extra_corpora: dict[str, str | Path] | None = None,
               sts_path: str | Path | None = None, batch_size: int = 32, max_queries: int = 200,
               max_sts_pairs: int | None = None, document_length: int | None = None,
               retrieval: bool = True) -> dict[str, float]:
    """{"dev/TASK/ndcg_at_10", "dev/TASK/recall_at_10", "dev/sts/spearman", "dev/score": mean of the main scores}.

    document_length: cut corpus documents to this many tokens, as the trainer's dev scores do."""
    shorten = None if document_length is None else (lambda texts: truncate_texts(model, texts, document_length))
    dev_set = build_dev_set(dev_records, extra_corpora, sts_path, max_queries, retrieval=retrieval,
                            max_sts_pairs=max_sts_pairs, shorten=shorten)
    return score_dev_set(model, dev_set, batch_size)


def truncate_texts(model, texts: list[str], length: int) -> list[str]:
    """Texts cut to `length` tokens of the Embedding LLM, as training cuts documents (dev scores stay cheap)."""
    tokenizer = model.tokenizer
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [text if len(row) <= length else tokenizer.decode(row[:length]) for text, row in zip(texts, ids)]
