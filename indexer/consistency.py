"""Reconcile the SQLite rows and a FAISS index after anything, a SIGKILL included.

Writes go in this order: rows are committed, then vectors are added and the FAISS file is replaced
atomically every few seconds. A run killed at any point therefore leaves only two kinds of
disagreement, both found here by comparing id sets:
- vectors without rows (a document deleted or changed before the file was saved): removed;
- rows without vectors (chunks committed, their vectors not yet saved): embedded again.
Duplicated ids (never written by this code, but cheap to catch) are removed and re-embedded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Report:
    collection: str
    instruction: str
    fingerprint: str
    chunks: int
    vectors: int
    orphans: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # vectors without rows
    missing: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # rows without vectors
    duplicates: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # ids stored twice
    file_problem: str | None = None  # the FAISS file could not be read (it is rebuilt)
    keyword_problem: str | None = None  # the keyword index differs from the chunk rows (it is rebuilt)
    repaired: bool = False

    @property
    def vectors_ok(self) -> bool:
        """The FAISS file agrees with the rows (the keyword index aside)."""
        return not (len(self.orphans) or len(self.missing) or len(self.duplicates) or self.file_problem)

    @property
    def ok(self) -> bool:
        return self.vectors_ok and not self.keyword_problem

    def as_dict(self) -> dict:
        return {
            "collection": self.collection, "instruction": self.instruction, "fingerprint": self.fingerprint,
            "chunks": self.chunks, "vectors": self.vectors, "ok": self.ok,
            "vectors_without_rows": len(self.orphans), "rows_without_vectors": len(self.missing),
            "duplicated_ids": len(self.duplicates), "file_problem": self.file_problem, "keyword_problem": self.keyword_problem,
            "repaired": self.repaired,
        }

    def __str__(self) -> str:
        if self.ok:
            return f"{self.collection}: consistent ({self.chunks} chunks, {self.vectors} vectors)"
        parts = []
        if self.file_problem:
            parts.append(f"index file unreadable ({self.file_problem})")
        if self.keyword_problem:
            parts.append(self.keyword_problem)
        if len(self.orphans):
            parts.append(f"{len(self.orphans)} vectors without rows")
        if len(self.missing):
            parts.append(f"{len(self.missing)} chunks without vectors")
        if len(self.duplicates):
            parts.append(f"{len(self.duplicates)} duplicated vector ids")
        return f"{self.collection}: " + ", ".join(parts)


def compare(chunk_ids: np.ndarray, vector_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(orphans, missing, duplicates) from the rows' ids and the ids stored in FAISS."""
    unique, counts = np.unique(vector_ids, return_counts=True)
    duplicates = unique[counts > 1]
    orphans = np.setdiff1d(unique, chunk_ids, assume_unique=True)
    missing = np.setdiff1d(chunk_ids, unique, assume_unique=True)
    return orphans, missing, duplicates
