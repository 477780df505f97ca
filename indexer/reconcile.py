"""Crash recovery on every writable open: bring a collection's FAISS index back in line with its rows.

What a kill can leave behind, and how it is found, is explained in consistency.py. Here the index is
repaired: vectors without rows removed, rows without vectors taken from a sibling index or embedded
again, then saved.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from tqdm.auto import tqdm

from . import keyword
from .consistency import Report, compare
from .ingest import embed_texts
from .store import ID_BATCH, ChunkRow, IndexRow, collection_chunk_ids
from .vectors import VectorIndex

if TYPE_CHECKING:  # types only: collection.py imports this module
    from .collection import Collection


def check(collection: Collection) -> Report:
    with collection.store.sessions() as session:
        chunk_ids = collection_chunk_ids(session, collection.row.id)
    vector_ids = collection.vectors.ids()
    orphans, missing, duplicates = compare(chunk_ids, vector_ids)
    return Report(collection.name, collection.instruction, collection.index_row.fingerprint, len(chunk_ids),
                  len(vector_ids), orphans, missing, duplicates, collection.file_problem,
                  keyword_problem(collection.store.engine))


def reconcile(collection: Collection) -> Report:
    """Remove vectors without rows, embed rows without vectors, save. Runs on every writable open."""
    collection._require_writable()
    report = check(collection)
    if report.ok:
        return report
    if report.keyword_problem:
        with collection.store.engine.begin() as connection:
            keyword.rebuild(connection)
    report.repaired = True
    if report.vectors_ok:
        return report
    stale = np.union1d(report.orphans, report.duplicates)
    collection.vectors.remove(stale)
    todo = _copy_from_siblings(collection, np.union1d(report.missing, report.duplicates))
    collection.completed = _embed_chunk_ids(collection, todo)
    collection.file_problem = None
    collection._dirty = True
    collection.save()
    return report


def _copy_from_siblings(collection: Collection, ids: np.ndarray) -> np.ndarray:
    """Take vectors from another index of this collection with the same model and document
    instruction (only the query instruction differs, so document vectors are identical); returns
    the ids still to embed."""
    if len(ids) == 0:
        return ids
    with collection.store.sessions() as session:
        siblings = session.scalars(select(IndexRow).where(
            IndexRow.collection_id == collection.row.id, IndexRow.id != collection.index_row.id,
            IndexRow.fingerprint == collection.index_row.fingerprint,
            IndexRow.document_instruction == collection.document_instruction)).all()
    for sibling in siblings:
        path = collection.store.directory / sibling.file
        if len(ids) == 0 or not path.exists():
            continue
        try:
            source = VectorIndex.load(path, sibling.params)
        except RuntimeError:
            continue
        have = np.intersect1d(ids, source.ids())
        for start in range(0, len(have), 4096):
            part = have[start:start + 4096]
            collection.vectors.add(part, source.index.reconstruct_batch(part))
        ids = np.setdiff1d(ids, have)
        collection._dirty = True
    return ids


def _embed_chunk_ids(collection: Collection, ids: np.ndarray) -> int:
    done = 0
    with tqdm(total=len(ids), desc=f"completing '{collection.name}'", unit="chunk", disable=not collection.progress) as bar:
        for start in range(0, len(ids), ID_BATCH):
            part = [int(i) for i in ids[start:start + ID_BATCH]]
            with collection.store.sessions() as session:
                rows = session.execute(select(ChunkRow.id, ChunkRow.text).where(ChunkRow.id.in_(part))).all()
            if rows:
                texts = [text for _, text in rows]
                vectors = embed_texts(collection.model, texts, [collection.document_instruction])[0]
                collection.vectors.add(np.array([i for i, _ in rows], dtype=np.int64), vectors)
                collection._dirty = True
                collection._maybe_save()
            done += len(rows)
            bar.update(len(part))
    return done


def keyword_problem(engine, thorough: bool = False) -> str | None:
    """What is wrong with the store's keyword index (None: nothing, or a store without one)."""
    if not keyword.supported(engine):
        return None
    with engine.connect() as connection:
        return keyword.problem(connection, thorough)
