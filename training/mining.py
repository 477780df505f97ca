"""Hard negatives by BM25 (bm25s): texts that share words with the query but are not its answer.

Per task, the pool is the task's corpus (a BEIR folder's documents) or else every positive of the
task. A candidate is never one of the query's own positives (a query can have several).
bm25s is imported here only: preparation runs on a CPU machine, training never needs it.
"""
from __future__ import annotations

from collections import defaultdict

from .data import Record
from .errors import TrainingError


def mine_hard_negatives(records: list[Record], count: int = 1, pools: dict[str, list[str]] | None = None,
                        skip_top: int = 0, show_progress: bool = False) -> list[Record]:
    """Records with up to `count` BM25 negatives appended (existing negatives are kept first).

    skip_top: leave out the best-ranked candidates, which are often unlabelled positives.
    """
    if count <= 0:
        return records
    by_task: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_task[record.task].append(record)
    for task, task_records in by_task.items():
        pool = (pools or {}).get(task) or sorted({r.positive for r in task_records})
        _mine_task(task_records, pool, count, skip_top, show_progress)
    return records


def _mine_task(records: list[Record], pool: list[str], count: int, skip_top: int, show_progress: bool) -> None:
    import bm25s

    if len(pool) < 2:
        return
    positives: dict[str, set[str]] = defaultdict(set)
    for record in records:
        positives[record.query].add(record.positive)
    retriever = bm25s.BM25()
    tokens = bm25s.tokenize(pool, show_progress=show_progress)
    if not tokens.vocab:
        raise TrainingError(f"cannot mine hard negatives for task {records[0].task}: its {len(pool)} documents "
                            "have no word BM25 can rank (only stop words or symbols?); fix the data or pass "
                            "--hard-negatives 0")
    retriever.index(tokens, show_progress=show_progress)
    queries = sorted(positives)
    k = min(len(pool), count + skip_top + 8)  # room for the positives we drop
    hits, _ = retriever.retrieve(bm25s.tokenize(queries, show_progress=show_progress), k=k,
                                 show_progress=show_progress)
    mined: dict[str, list[str]] = {}
    for query, row in zip(queries, hits):
        candidates = [pool[i] for i in row if pool[i] not in positives[query] and pool[i] != query]
        mined[query] = candidates[skip_top:]
    for record in records:
        have = {record.query, record.positive, *record.negatives}
        extra = [text for text in mined[record.query] if text not in have]
        record.negatives = record.negatives + extra[:max(0, count - len(record.negatives))]
