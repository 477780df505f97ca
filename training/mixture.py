"""The task mixture: every batch comes from one task, and no text appears twice in a batch.

One task per batch keeps in-batch negatives meaningful (a SciFact abstract is a poor negative for an
STS sentence, and a trivially easy one). Repeated texts inside a batch would be false negatives.
Batches are a pure function of (seed, epoch), so a resumed run finds its place by counting batches.
Tasks interleave in proportion to their size times their weight (default 1): a weight of 3 packs a
task's records three times per epoch (three shuffles), 0.5 keeps half of its batches, 0 leaves it out.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Iterator

from .data import Record


class TaskMixture:
    def __init__(self, records: list[Record], batch_size: int, seed: int = 0, hard_negatives: int = 1,
                 weights: dict[str, float] | None = None):
        if batch_size < 2:
            raise ValueError("batch_size must be at least 2 (in-batch negatives need company)")
        self.batch_size, self.seed, self.hard_negatives = batch_size, seed, hard_negatives
        self.weights = dict(weights or {})
        self.tasks: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            trimmed = Record(record.query, record.positive, record.negatives[:hard_negatives],
                             record.instruction, record.task)
            self.tasks[record.task].append(trimmed)
        self.tasks = dict(sorted(self.tasks.items()))
        unknown = sorted(set(self.weights) - set(self.tasks))
        if unknown:
            raise ValueError(f"task weight for unknown task(s) {', '.join(unknown)}; the tasks are: {', '.join(self.tasks)}")
        if not all(math.isfinite(w) and w >= 0 for w in self.weights.values()):
            raise ValueError("task weights must be finite numbers >= 0")
        if not any(len(r) >= batch_size for r in self.tasks.values()):
            sizes = ", ".join(f"{t}: {len(r)}" for t, r in self.tasks.items())
            raise ValueError(f"no task has a full batch of {batch_size} records ({sizes}); lower --batch-size")

    def epoch(self, epoch: int) -> list[list[Record]]:
        """The batches of one pass, each from a single task, in a seeded order."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches = []
        for task, records in self.tasks.items():
            weight = self.weights.get(task, 1.0)
            task_batches, wanted = [], None
            while wanted is None or len(task_batches) < wanted:
                shuffled = records[:]
                rng.shuffle(shuffled)
                packed = self._pack(shuffled)
                wanted = round(weight * len(packed)) if wanted is None else wanted
                if not packed:
                    break
                task_batches += packed
            batches += task_batches[:wanted]
        rng.shuffle(batches)  # tasks interleave in proportion to their size
        return batches

    def _pack(self, records: list[Record]) -> list[list[Record]]:
        """Greedy: each record goes to the first open batch where none of its texts is present yet."""
        full: list[list[Record]] = []
        open_batches: list[tuple[list[Record], set[str]]] = []
        for record in records:
            texts = record.texts()
            if len(set(texts)) != len(texts):
                continue
            for batch, seen in open_batches:
                if seen.isdisjoint(texts):
                    batch.append(record)
                    seen.update(texts)
                    break
            else:
                batch, seen = [record], set(texts)
                open_batches.append((batch, seen))
            if len(batch) == self.batch_size:
                full.append(batch)
                open_batches = [(b, s) for b, s in open_batches if b is not batch]
            if len(open_batches) > 8:  # a text repeated very often: give up on its oldest batch
                open_batches.pop(0)
        return full  # incomplete batches are dropped; they come back shuffled next epoch

    def stream(self, skip: int = 0) -> Iterator[list[Record]]:
        """Endless batches across epochs; skip = batches already consumed (resume)."""
        epoch = 0
        while True:
            batches = self.epoch(epoch)
            if not batches:
                raise ValueError("the mixture yields no batch; lower --batch-size")
            if skip >= len(batches):
                skip -= len(batches)
            else:
                yield from batches[skip:]
                skip = 0
            epoch += 1
