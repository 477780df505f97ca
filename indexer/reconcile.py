"""Crash recovery on every writable open: bring a collection's FAISS index back in line with its rows.

What a kill can leave behind, and how it is found, is explained in consistency.py. Here the index is
repaired: vectors without rows removed, rows without vectors taken from a sibling index or embedded
again, then saved.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import select

from . import keyword
from .consistency import Report, compare
from .store import ID_BATCH, ChunkRow, IndexRow, collection_chunk_ids
from .vectors import VectorIndex


class ReconcileMixin:
    """Consistency check and repair of a Collection (its store, rows, vectors and model)."""

    def check(self) -> Report:
        with self.store.sessions() as session:
            chunk_ids = collection_chunk_ids(session, self.row.id)
        vector_ids = self.vectors.ids()
        orphans, missing, duplicates = compare(chunk_ids, vector_ids)
        return Report(self.name, self.instruction, self.index_row.fingerprint, len(chunk_ids),
                      len(vector_ids), orphans, missing, duplicates, self.file_problem,
                      keyword_problem(self.store.engine))

    def reconcile(self) -> Report:
        """Remove vectors without rows, embed rows without vectors, save. Runs on every writable open."""
        self._require_writable()
        report = self.check()
        if report.ok:
            return report
        if report.keyword_problem:
            with self.store.engine.begin() as connection:
                keyword.rebuild(connection)
        report.repaired = True
        if report.vectors_ok:
            return report
        stale = np.union1d(report.orphans, report.duplicates)
        self.vectors.remove(stale)
        todo = self._copy_from_siblings(np.union1d(report.missing, report.duplicates))
        self.completed = self._embed_chunk_ids(todo)
        self.file_problem = None
        self._dirty = True
        self.save()
        return report

    def _copy_from_siblings(self, ids: np.ndarray) -> np.ndarray:
        """Take vectors from another index of this collection with the same model and document
        instruction (only the query instruction differs, so document vectors are identical); returns
        the ids still to embed."""
        if len(ids) == 0:
            return ids
        with self.store.sessions() as session:
            siblings = session.scalars(select(IndexRow).where(
                IndexRow.collection_id == self.row.id, IndexRow.id != self.index_row.id,
                IndexRow.fingerprint == self.index_row.fingerprint,
                IndexRow.document_instruction == self.document_instruction)).all()
        for sibling in siblings:
            path = self.store.directory / sibling.file
            if len(ids) == 0 or not path.exists():
                continue
            try:
                source = VectorIndex.load(path, sibling.params)
            except RuntimeError:
                continue
            have = np.intersect1d(ids, source.ids())
            for start in range(0, len(have), 4096):
                part = have[start:start + 4096]
                self.vectors.add(part, source.index.reconstruct_batch(part))
            ids = np.setdiff1d(ids, have)
            self._dirty = True
        return ids

    def _embed_chunk_ids(self, ids: np.ndarray) -> int:
        from tqdm.auto import tqdm

        done = 0
        with tqdm(total=len(ids), desc=f"completing '{self.name}'", unit="chunk", disable=not self.progress) as bar:
            for start in range(0, len(ids), ID_BATCH):
                part = [int(i) for i in ids[start:start + ID_BATCH]]
                with self.store.sessions() as session:
                    rows = session.execute(select(ChunkRow.id, ChunkRow.text).where(ChunkRow.id.in_(part))).all()
                if rows:
                    vectors = self._encode_documents([text for _, text in rows])
                    self.vectors.add(np.array([i for i, _ in rows], dtype=np.int64), vectors)
                    self._dirty = True
                    self._maybe_save()
                done += len(rows)
                bar.update(len(part))
        return done


def keyword_problem(engine, thorough: bool = False) -> str | None:
    """What is wrong with the store's keyword index (None: nothing, or a store without one)."""
    if not keyword.supported(engine):
        return None
    with engine.connect() as connection:
        return keyword.problem(connection, thorough)
