"""The facade: `Store` holds the collections, `Collection` one collection indexed and searched with one model.

    store = Store()                                   # home()/collections/: SQLite + FAISS files
    docs = store.open("notes", model, create=True)           # the index for (notes, instruction, model)
    report = docs.index(["~/notes"])                        # new and changed files only; deleted ones removed
    hits = docs.search("how do I ...", k=5, filters=["ext=.md"])
    docs.close()

The model is any object with encode(texts, instruction=...), encode_document(texts, instruction=...),
tokenizer, dimension and fingerprint; the indexer never trains anything.

`Collection` gets its indexing (index, upsert, delete) from ingest.py and its crash recovery (check,
reconcile, run on every writable open) from reconcile.py; here: opening, the FAISS file, search.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from embedder.home import subdir
from embedder.protocol import Embedder

from .chunking import check_sizes
from .consistency import Report, compare
from .errors import IndexerError
from .filters import Filter, condition, path_prefix_condition
from .fusion import DEFAULT_KEYWORD_WEIGHT, MODES, check_weight, reciprocal_rank_fusion
from . import ingest, keyword, reconcile
from .ingest import BATCH_CHUNKS, IndexReport, check_delete_paths, delete_documents  # noqa: F401  (IndexReport: imported from here)
from .loaders import LoaderOptions
from .locks import WriteLock
from .reconcile import keyword_problem
from .snippets import snippet
from .store import (ID_BATCH, ChunkRow, CollectionRow, DocumentRow, IndexRow, collection_chunk_ids, make_engine,
                    make_sessions, sqlite_url, utcnow)
from .vectors import INDEX_TYPES, VectorIndex, check_params, desired_kind, tunable

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_CHUNK_OVERLAP = 32
SAVE_INTERVAL = 5.0  # seconds between FAISS saves during a run (and one at the end)


@dataclass
class Hit:
    score: float
    path: str
    title: str
    text: str
    position: int
    record: int
    chunk_id: int
    metadata: dict
    snippet: str = ""  # the part of the chunk around its best match, whitespace collapsed
    highlights: list[tuple[int, int]] = field(default_factory=list)  # query-term spans in snippet
    relative_path: str = ""  # path relative to the collection's common folder
    chunks_matched: int = 1  # grouped search: how many of the document's chunks ranked

    def as_dict(self) -> dict:
        return {"score": self.score, "path": self.path, "relative_path": self.relative_path, "title": self.title,
                "snippet": self.snippet, "highlights": [list(span) for span in self.highlights],
                "text": self.text, "position": self.position, "record": self.record, "chunk_id": self.chunk_id,
                "chunks_matched": self.chunks_matched, "metadata": self.metadata}


BUILTIN_KEYS = ("path", "title")



COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_collection_name(name: str) -> str:
    """A name that is safe as a folder name and in a terminal: letters, digits, '.', '_', '-', 1-100 characters,
    not starting with a dot ('..' used to let a UI upload overwrite files in the home folder)."""
    if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name):
        raise ValueError(f"collection name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def default_instructions(model: Embedder) -> tuple[str, str]:
    """(query, document) instructions a model uses when none is given."""
    config = getattr(model, "config", None)
    query = getattr(config, "query_instruction", "") or ""
    document = "" if getattr(config, "text_mode", False) else (getattr(config, "document_instruction", "") or "")
    return query, document


class Store:
    """The store: one database (SQLite by default, any SQLAlchemy URL) and a directory of FAISS files."""

    def __init__(self, directory: str | os.PathLike | None = None, url: str | None = None):
        if directory is None:
            directory = subdir("collections")
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # indexed text is the user's alone
        self.url = url or sqlite_url(self.directory / "collections.sqlite")
        # one opener at a time creates the tables and switches a new database to WAL (threads and processes
        # alike): two at once fail with "table already exists" or "database is locked"
        schema = WriteLock(self.directory, ".schema")
        schema.acquire()
        try:
            self.engine = make_engine(self.url)
        finally:
            schema.release()
        if url is None:
            try:
                os.chmod(self.directory / "collections.sqlite", 0o600)
            except OSError:  # another user's store, opened to read: leave its modes alone
                pass
        self.sessions = make_sessions(self.engine)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def lock(self, name: str) -> WriteLock:
        return WriteLock(self.directory, name)

    # ----- listing ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self.sessions() as session:
            return list(session.scalars(select(CollectionRow.name).order_by(CollectionRow.name)))

    def row(self, session: Session, name: str) -> CollectionRow:
        row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
        if row is None:
            known = ", ".join(self.names()) or "none yet"
            raise IndexerError(f"no collection named '{name}' (collections: {known}); "
                               f"create it with `promptembedder index PATH --collection {name}`")
        return row

    def indexes(self, name: str) -> list[IndexRow]:
        with self.sessions() as session:
            row = self.row(session, name)
            return list(session.scalars(select(IndexRow).where(IndexRow.collection_id == row.id)
                                        .order_by(IndexRow.updated.desc())))

    def stats(self, name: str | None = None) -> list[dict]:
        """Documents, chunks and indexes (vectors as of their last save) of one or every collection."""
        out = []
        with self.sessions() as session:
            rows = [self.row(session, name)] if name else session.scalars(select(CollectionRow)
                                                                          .order_by(CollectionRow.name))
            for row in rows:
                documents = session.scalar(select(func.count()).select_from(DocumentRow)
                                           .where(DocumentRow.collection_id == row.id))
                chunks = session.scalar(select(func.count()).select_from(ChunkRow).join(DocumentRow)
                                        .where(DocumentRow.collection_id == row.id))
                indexes = session.scalars(select(IndexRow).where(IndexRow.collection_id == row.id)
                                          .order_by(IndexRow.updated.desc()))
                out.append({
                    "name": row.name, "documents": documents, "chunks": chunks,
                    "chunk_tokens": row.chunk_tokens, "chunk_overlap": row.chunk_overlap,
                    "created": row.created.isoformat(timespec="seconds"),
                    "indexes": [_index_info(ix, self.directory) for ix in indexes],
                })
        return out

    def check(self, name: str) -> list[Report]:
        """Compare rows and vectors of every index of a collection (no model needed; nothing written)."""
        with self.sessions() as session:
            row = self.row(session, name)
            chunk_ids = collection_chunk_ids(session, row.id)
            indexes = list(session.scalars(select(IndexRow).where(IndexRow.collection_id == row.id)
                                           .order_by(IndexRow.id)))
        keyword_state = keyword_problem(self.engine, thorough=True)  # one keyword index for the whole store
        reports = []
        for ix in indexes:
            path, problem = self.directory / ix.file, None
            vector_ids = np.empty(0, np.int64)
            if path.exists():
                try:
                    vector_ids = VectorIndex.load(path, ix.params).ids()
                except RuntimeError as exc:
                    problem = str(exc).splitlines()[0]
            orphans, missing, duplicates = compare(chunk_ids, vector_ids)
            reports.append(Report(name, ix.instruction, ix.fingerprint, len(chunk_ids), len(vector_ids),
                                  orphans, missing, duplicates, problem, keyword_state))
        return reports

    # ----- opening ----------------------------------------------------------------------------
    def open(self, name: str, model: Embedder, instruction: str | None = None, *,
             document_instruction: str | None = None, index_type: str | None = None, index_params: dict | None = None, chunk_tokens: int | None = None,
             chunk_overlap: int | None = None, model_name: str | None = None, create: bool = False,
             writable: bool | None = None, progress: bool | None = None,
             also: Sequence[tuple[str, str]] = (), held_lock: WriteLock | None = None) -> "Collection":
        """The collection's index for this model and instruction (default: the model's query instruction).
        Writing (indexing, reconcile) also chunks with the model's tokenizer (a TokenizingEmbedder).

        Writable (the default when create=True) takes the collection's write lock, creates what is
        missing and reconciles SQLite with FAISS; read-only needs the index to exist and never writes.
        also: more (query instruction, document instruction) indexes, opened writable with this one and
        written with it (`index` and `upsert` embed each text once for all of them; see
        PromptEmbedder.encode_document_many). held_lock: internal, the lock of the collection opening it.
        """
        writable = create if writable is None else writable
        if also and not writable:
            raise ValueError("several document instructions are written together: open writable")
        keys = [instruction, *(query for query, _ in also)]
        if len(set(keys)) < len(keys):
            raise ValueError("each document instruction needs its own query instruction (the index's key)")
        if index_type is not None and index_type not in INDEX_TYPES:
            raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, not {index_type!r}")
        check_params(dict(index_params or {}))  # before anything is stored
        query_default, document_default = default_instructions(model)
        instruction = query_default if instruction is None else instruction
        lock = held_lock or self.lock(name)
        if writable and held_lock is None:
            lock.acquire(on_wait=lambda: print(f"waiting for another process writing collection '{name}'...",
                                               file=sys.stderr))
        try:
            with self.sessions.begin() as session:
                row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
                if row is None:
                    if not create:
                        self.row(session, name)  # raises with the known names
                    check_collection_name(name)  # new ones only: an existing collection stays reachable
                    tokens = chunk_tokens or DEFAULT_CHUNK_TOKENS
                    overlap = min(DEFAULT_CHUNK_OVERLAP, tokens // 8) if chunk_overlap is None else chunk_overlap
                    check_sizes(tokens, overlap)  # before anything is stored
                    row = CollectionRow(name=name, chunk_tokens=tokens, chunk_overlap=overlap)
                    session.add(row)
                    session.flush()
                elif writable:
                    _check_chunking(row, chunk_tokens, chunk_overlap)
                index_row = session.scalar(select(IndexRow).where(
                    IndexRow.collection_id == row.id, IndexRow.instruction == instruction,
                    IndexRow.fingerprint == model.fingerprint))
                if index_row is None:
                    if not writable:
                        raise IndexerError(_no_index_message(session, row, instruction, model.fingerprint))
                    index_row = IndexRow(
                        collection_id=row.id, instruction=instruction, fingerprint=model.fingerprint,
                        document_instruction=document_default if document_instruction is None else document_instruction,
                        model_name=model_name or "", dimension=model.dimension, index_type=index_type or "auto",
                        params=dict(index_params or {}))
                    session.add(index_row)
                    session.flush()
                    index_row.file = f"index-{index_row.id}.faiss"
                    (self.directory / index_row.file).unlink(missing_ok=True)
                elif writable:
                    if document_instruction is not None and document_instruction != index_row.document_instruction:
                        raise IndexerError(
                            f"the index of '{name}' for this model and instruction embeds documents under "
                            f"{index_row.document_instruction!r}, not {document_instruction!r}; use another "
                            "collection or query instruction")
                    if index_type is not None and index_type != index_row.index_type:
                        index_row.index_type = index_type  # rebuilt to the new type at the end of the run
                    if index_params:
                        index_row.params = {**index_row.params, **index_params}
                    check_params(tunable(index_row.params))  # one stored by an older version is refused here
                    if model_name:
                        index_row.model_name = model_name
                session.flush()
                session.expunge_all()
        except BaseException:
            if held_lock is None:
                lock.release()
            raise
        collection = Collection(self, row, index_row, model, lock if writable else None, progress)
        if writable:
            try:
                collection.open_report = collection.reconcile()
                for query, document in also:
                    collection.siblings.append(self.open(
                        name, model, query, document_instruction=document, index_type=index_type,
                        index_params=index_params, model_name=model_name, create=True, progress=progress,
                        held_lock=lock))
            except BaseException:
                collection.close()
                raise
        return collection

    # ----- deleting ---------------------------------------------------------------------------
    def drop(self, name: str) -> dict:
        """Delete a collection: its rows, then its FAISS files."""
        lock = self.lock(name)
        lock.acquire(on_wait=lambda: print(f"waiting for another process writing collection '{name}'...",
                                           file=sys.stderr))
        try:
            info = self.stats(name)[0]
            with self.sessions.begin() as session:
                row = self.row(session, name)
                files = [ix.file for ix in row.indexes]
                session.delete(row)
            for file in files:
                (self.directory / file).unlink(missing_ok=True)
            return info
        finally:
            lock.release()

    def delete_documents(self, name: str, paths: Sequence[str]) -> int:
        """Delete documents (exact paths, or every document under a directory) from every index of a collection."""
        check_delete_paths(paths)  # before waiting for the lock
        lock = self.lock(name)
        lock.acquire(on_wait=lambda: print(f"waiting for another process writing collection '{name}'...",
                                           file=sys.stderr))
        try:
            with self.sessions() as session:
                row = self.row(session, name)
                collection_id = row.id
            return delete_documents(self, collection_id, paths, loaded={})
        finally:
            lock.release()


class Collection:
    """One collection with the FAISS index of one (instruction, model). Open it with Store.open().

    Writing (ingest.py) and crash repair (reconcile.py) are plain functions of a Collection; the
    methods below hand on to them.
    """

    def __init__(self, store: Store, row: CollectionRow, index_row: IndexRow, model: Embedder,
                 lock: WriteLock | None, progress: bool | None = None):
        self.store, self.row, self.index_row, self.model, self.lock = store, row, index_row, model, lock
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.name = row.name
        self.path = store.directory / index_row.file
        self.vectors, self.file_problem = self._load_vectors()
        self._last_save = time.monotonic()
        self._dirty = False
        self.save_interval = SAVE_INTERVAL
        self.completed = 0  # chunks of an interrupted run embedded by reconcile()
        self.open_report: Report | None = None  # what reconcile() found when a writable open ran it
        self.siblings: list[Collection] = []  # indexes written with this one (open(also=...))

    @property
    def writable(self) -> bool:
        return self.lock is not None

    @property
    def instruction(self) -> str:
        return self.index_row.instruction

    @property
    def document_instruction(self) -> str:
        return self.index_row.document_instruction

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- writing and repair -----------------------------------------------------------------
    def index(self, paths: Sequence[str | os.PathLike], options: LoaderOptions | None = None,
              batch_chunks: int = BATCH_CHUNKS) -> IndexReport:
        """Index files and folders: new and changed files are embedded, files gone from a folder removed."""
        return ingest.index(self, paths, options, batch_chunks)

    def upsert(self, documents: Iterable[dict], batch_chunks: int = BATCH_CHUNKS) -> IndexReport:
        """Add or replace documents given as {"id": key, "text": ..., "title": ..., "metadata": {...}}."""
        return ingest.upsert(self, documents, batch_chunks)

    def delete(self, paths: Sequence[str]) -> int:
        """Delete documents (exact paths or keys, or everything under a directory) from every index."""
        return ingest.remove_documents(self, paths)

    def check(self) -> Report:
        """Compare the FAISS index with the chunk rows (and the keyword index with the chunks)."""
        return reconcile.check(self)

    def reconcile(self) -> Report:
        """Remove vectors without rows, embed rows without vectors, save. Runs on every writable open."""
        return reconcile.reconcile(self)

    def close(self) -> None:
        for sibling in self.siblings:  # they share this collection's lock: saved here, released once below
            if sibling._dirty:
                sibling.save()
            sibling.lock = None
        self.siblings = []
        if self.lock is not None:
            try:
                if self._dirty:
                    self.save()
            finally:
                self.lock.release()
                self.lock = None

    # ----- the FAISS file ---------------------------------------------------------------------
    def _load_vectors(self) -> tuple[VectorIndex, str | None]:
        params = self.index_row.params
        if self.path.exists():
            try:
                vectors = VectorIndex.load(self.path, params)
            except RuntimeError as exc:
                problem = f"cannot read {self.path.name}: {str(exc).splitlines()[0]}"
            else:
                if vectors.dimension == self.index_row.dimension:
                    return vectors, None
                problem = f"{self.path.name} has dimension {vectors.dimension}, the index {self.index_row.dimension}"
            if not self.writable:
                raise IndexerError(f"collection '{self.name}': {problem}; run `promptembedder stats --collection "
                                   f"{self.name} --check --repair` with its model to rebuild it")
            return self._empty_vectors(), problem
        return self._empty_vectors(), None

    def _empty_vectors(self) -> VectorIndex:
        kind = "hnsw" if self.index_row.index_type == "hnsw" else "flat"
        return VectorIndex.empty(self.index_row.dimension, kind, self.index_row.params)

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexerError(f"collection '{self.name}' was opened read-only")

    def save(self) -> None:
        self._require_writable()
        self.vectors.save(self.path)
        with self.store.sessions.begin() as session:
            built = self.vectors.kind + (f" nlist={self.vectors.nlist}" if self.vectors.nlist else "") + \
                (f" m={self.vectors.index.pq.M}" if self.vectors.kind == "ivfpq" else "")
            params = {**self.index_row.params, "built": built}
            session.execute(update(IndexRow).where(IndexRow.id == self.index_row.id).values(
                vectors=self.vectors.ntotal, updated=utcnow(), params=params, index_type=self.index_row.index_type,
                model_name=self.index_row.model_name))
            self.index_row.params = params
        self._last_save, self._dirty = time.monotonic(), False

    def _maybe_save(self) -> None:
        if self._dirty and time.monotonic() - self._last_save >= self.save_interval:
            self.save()

    def _maybe_rebuild(self) -> None:
        """Move to the index type the size calls for (auto), or to a newly requested one."""
        kind, nlist = desired_kind(self.index_row.index_type, self.vectors.ntotal, self.index_row.params,
                                   self.vectors.dimension)
        # IVF-Flat retrains its lists as it grows; IVF-PQ does not (it would retrain on its own lossy codes)
        if kind != self.vectors.kind or (kind == "ivf" and nlist >= 2 * (self.vectors.nlist or 0)
                                         and not self.index_row.params.get("nlist")):
            self.vectors = self.vectors.rebuilt(kind, nlist)
            self._dirty = True

    def _refresh(self) -> None:
        """Read-only: pick up the file a writer replaced since we loaded it."""
        if not self.writable and self.vectors.changed_on_disk(self.path) and self.path.exists():
            self.vectors = VectorIndex.load(self.path, self.index_row.params)

    # ----- search -----------------------------------------------------------------------------
    @property
    def default_mode(self) -> str:
        """hybrid where the store has a keyword index (SQLite), else semantic."""
        return "hybrid" if keyword.supported(self.store.engine) else "semantic"

    def search(self, query: str, k: int = 10, filters: Sequence[str | Filter] = (), path_prefix: str | None = None,
               *, mode: str | None = None, keyword_weight: float = DEFAULT_KEYWORD_WEIGHT, offset: int = 0,
               group: bool = True) -> list[Hit]:
        """Hits k (after skipping `offset`) for a query, best first; filters narrow both rankings.

        mode: 'semantic' (cosine of this index's embeddings), 'keyword' (BM25 over the chunks' words) or
        'hybrid' (their reciprocal-rank fusion, `keyword_weight` the keyword side's share; the default).
        group: one hit per item, its best chunk (else one per chunk); an item is a document, except that each
        record of a JSON, JSONL or CSV file is one (a PDF's pages stay one document)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        if offset < 0:
            raise ValueError(f"offset must be 0 or more, not {offset}")
        mode = self.default_mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"search mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != "semantic":
            keyword.require(self.store.engine)
        check_weight(keyword_weight)
        self._refresh()
        filters = [f if isinstance(f, Filter) else Filter.parse(f) for f in filters]
        self._check_filter_keys(filters)
        conditions = [condition(f) for f in filters] + ([path_prefix_condition(path_prefix)] if path_prefix else [])
        allowed = None
        if conditions and mode != "keyword":
            allowed = self._filtered_ids(conditions)
            if len(allowed) == 0:
                return []
        query_vector = None
        if mode != "keyword" and self.vectors.ntotal:
            query_vector = np.asarray(self.model.encode([query], instruction=self.instruction,
                                                        show_progress_bar=False), dtype=np.float32)
        fetch = 4 * (offset + k) + 16  # per ranking; spares for grouping and rows deleted since the last save
        while True:
            semantic, semantic_done = self._semantic_ranking(query_vector, fetch, allowed)
            lexical, lexical_done = self._keyword_ranking(query, fetch, conditions) if mode != "semantic" else ([], True)
            if mode == "semantic":
                ranking = semantic
            elif mode == "keyword":
                ranking = lexical
            else:
                ranking = reciprocal_rank_fusion([i for i, _ in semantic], [i for i, _ in lexical], keyword_weight)
            hits = self._hits(ranking, group)
            if len(hits) >= offset + k or (semantic_done and lexical_done):
                break
            fetch *= 4
        root = self.root()
        for hit in hits[offset:offset + k]:  # the page only: snippets cost more than ranking
            hit.snippet, hit.highlights = snippet(hit.text, query)
            hit.relative_path = _relative(hit.path, root)
        return hits[offset:offset + k]

    def _semantic_ranking(self, query_vector, fetch: int, allowed) -> tuple[list[tuple[int, float]], bool]:
        """(chunk id, cosine) best first, and whether every vector was ranked."""
        if query_vector is None:
            return [], True
        fetch = min(fetch, self.vectors.ntotal)
        scores, ids = self.vectors.search(query_vector, fetch, allowed)
        found = [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        return found, fetch >= self.vectors.ntotal or len(found) < fetch

    def _keyword_ranking(self, query: str, fetch: int, conditions) -> tuple[list[tuple[int, float]], bool]:
        """(chunk id, -BM25) best first, and whether every matching chunk was ranked.

        The keyword index spans the whole store, so its best matches are taken first and then narrowed to
        this collection and the filters (deeper while too few survive): joining every match to its
        document before ranking cost three times as much."""
        expression = keyword.match_expression(query)
        if expression is None:
            return [], True
        depth = fetch
        with self.store.sessions() as session:
            while True:
                top = session.execute(keyword.ranked(expression).limit(depth)).all()
                ids = [int(i) for i, _ in top]
                keep = set()
                for start in range(0, len(ids), ID_BATCH):
                    keep.update(session.scalars(select(ChunkRow.id).join(DocumentRow).where(
                        ChunkRow.id.in_(ids[start:start + ID_BATCH]), self._these_ids_in_collection(), *conditions)))
                found = [(int(i), float(s)) for i, s in top if i in keep]
                exhausted = len(top) < depth
                if len(found) >= fetch or exhausted:
                    return found[:fetch], exhausted
                depth *= 4

    def _hits(self, ranking: list[tuple[int, float]], group: bool) -> list[Hit]:
        """Rows for ranked chunk ids, in order; grouped: one hit per item, counting its other chunks."""
        ids = [i for i, _ in ranking]
        rows = {}
        columns = (ChunkRow.id, ChunkRow.title, ChunkRow.text, ChunkRow.position, ChunkRow.record, ChunkRow.meta,
                   DocumentRow.id, DocumentRow.path, DocumentRow.meta)  # plain columns: ORM objects cost more
        with self.store.sessions() as session:
            for start in range(0, len(ids), ID_BATCH):
                rows.update((row[0], row) for row in session.execute(select(*columns).join(DocumentRow).where(
                    ChunkRow.id.in_(ids[start:start + ID_BATCH]), self._these_ids_in_collection())))
        hits: list[Hit] = []
        by_item: dict[tuple[int, int], Hit] = {}
        for chunk_id, score in ranking:
            if chunk_id not in rows:
                continue  # a vector whose row was deleted since the file was last saved
            _, title, text, position, record, chunk_meta, document_id, path, document_meta = rows[chunk_id]
            item = (document_id, 0 if "page" in chunk_meta else record)  # a document, or a JSON/CSV row of one
            if group and item in by_item:
                by_item[item].chunks_matched += 1
                continue
            by_item[item] = Hit(score, path, title, text, position, record, chunk_id, {**document_meta, **chunk_meta})
            hits.append(by_item[item])
        return hits

    def _these_ids_in_collection(self):
        """The collection condition for a query that names its chunk ids. "+ 0" hides collection_id's index from
        SQLite's planner, which would otherwise start from every document of the collection (2.5 s at 100k
        chunks) instead of from the few ids asked for."""
        return DocumentRow.collection_id + 0 == self.row.id

    def root(self) -> str:
        """The folder every indexed file path lies under ('' when documents are not files), for short paths."""
        with self.store.sessions() as session:  # two statements: SQLite answers a lone min() or max() from the
            where = DocumentRow.collection_id == self.row.id  # (collection, path) index, both at once by a scan
            low = session.scalar(select(func.min(DocumentRow.path)).where(where))
            high = session.scalar(select(func.max(DocumentRow.path)).where(where))
        if not low or not low.startswith("/") or not high.startswith("/"):
            return ""
        common = os.path.commonprefix([low, high])  # of the smallest and largest: common to all
        return common[:common.rfind("/") + 1]

    def _filtered_ids(self, conditions) -> np.ndarray:
        with self.store.sessions() as session:
            ids = session.scalars(select(ChunkRow.id).join(DocumentRow).where(
                DocumentRow.collection_id == self.row.id, *conditions)).all()
        return np.asarray(ids, dtype=np.int64)

    def _check_filter_keys(self, filters: list[Filter]) -> None:
        if not keyword.supported(self.store.engine):
            return  # a store that cannot look into its JSON (not SQLite): filters are applied as given
        for key in {f.key for f in filters} - set(BUILTIN_KEYS):
            if not self._has_metadata_key(key):  # every key is listed on the error path only: that scans all
                listed = ", ".join(sorted(set(self.metadata_keys()) | set(BUILTIN_KEYS)))
                raise IndexerError(f"no document in collection '{self.name}' has the metadata key {key!r}; "
                                   f"keys: {listed}")

    def _has_metadata_key(self, key: str) -> bool:
        """Whether a document or chunk of the collection has this metadata key; stops at the first one."""
        found = ("SELECT 1 FROM documents d, json_each(d.meta) j WHERE d.collection_id = :c AND j.key = :k "
                 "UNION ALL SELECT 1 FROM chunks c JOIN documents d ON c.document_id = d.id, json_each(c.meta) j "
                 "WHERE d.collection_id = :c AND j.key = :k LIMIT 1")
        with self.store.sessions() as session:
            return session.execute(text(found), {"c": self.row.id, "k": key}).first() is not None

    def metadata_keys(self, max_values: int = 12) -> dict[str, list[str]] | None:
        """Every metadata key of the collection's documents and chunks, with its values where there are at most
        `max_values` distinct ones (else []); None on a store other than SQLite."""
        if not keyword.supported(self.store.engine):
            return None
        pairs = ("SELECT j.key AS key, j.value AS value FROM documents d, json_each(d.meta) j "
                 "WHERE d.collection_id = :c UNION ALL "
                 "SELECT j.key, j.value FROM chunks c JOIN documents d ON c.document_id = d.id, json_each(c.meta) j "
                 "WHERE d.collection_id = :c")
        with self.store.sessions() as session:
            counts = session.execute(text(f"SELECT key, COUNT(DISTINCT value) FROM ({pairs}) GROUP BY key"),
                                     {"c": self.row.id}).all()
            keys = {}
            for key, count in counts:
                values = []
                if count <= max_values:
                    values = sorted(str(v) for v in session.scalars(
                        text(f"SELECT DISTINCT value FROM ({pairs}) WHERE key = :k"), {"c": self.row.id, "k": key}))
                keys[key] = values
        return keys

    def document_text(self, path: str) -> str:
        """A document's whole text as indexed, rebuilt from its chunks (overlaps removed), records apart."""
        with self.store.sessions() as session:
            chunks = session.scalars(select(ChunkRow).join(DocumentRow).where(
                DocumentRow.collection_id == self.row.id, DocumentRow.path == path)
                .order_by(ChunkRow.record, ChunkRow.position)).all()
        if not chunks:
            raise IndexerError(f"collection '{self.name}' has no document {path!r}")
        records: list[str] = []
        record, cursor = None, 0
        for chunk in chunks:
            if chunk.record != record:
                records.append((chunk.title + "\n\n" if chunk.title else "") + chunk.text)
                record, cursor = chunk.record, chunk.end
            elif chunk.end > cursor:
                overlap = max(0, cursor - chunk.start)
                records[-1] += ("" if overlap else " ") + chunk.text[overlap:]
                cursor = chunk.end
        return "\n\n".join(records)

    def stats(self) -> dict:
        return self.store.stats(self.name)[0]



def _relative(path: str, root: str) -> str:
    return path[len(root):] if root and path.startswith(root) else path


def _check_chunking(row: CollectionRow, tokens: int | None, overlap: int | None) -> None:
    if (tokens is not None and tokens != row.chunk_tokens) or (overlap is not None and overlap != row.chunk_overlap):
        raise IndexerError(f"collection '{row.name}' is chunked with {row.chunk_tokens} tokens and "
                           f"{row.chunk_overlap} overlap; index into a new collection to change that")


def _no_index_message(session: Session, row: CollectionRow, instruction: str, fingerprint: str) -> str:
    indexes = session.scalars(select(IndexRow).where(IndexRow.collection_id == row.id)).all()
    if not indexes:
        return f"collection '{row.name}' has no index yet; run `promptembedder index PATH --collection {row.name}`"
    listed = "; ".join(f"model {ix.model_name or '?'} ({ix.fingerprint}), instruction {ix.instruction!r}"
                       for ix in indexes)
    return (f"collection '{row.name}' has no index for this model ({fingerprint}) and instruction {instruction!r}. "
            f"It has: {listed}. Search with one of those (--model, --instruction), or build this one with "
            f"`promptembedder index --collection {row.name}` (it re-uses the stored chunks)")


def _index_info(ix: IndexRow, directory: Path) -> dict:
    path = directory / ix.file
    return {
        "instruction": ix.instruction, "document_instruction": ix.document_instruction,
        "fingerprint": ix.fingerprint, "model": ix.model_name, "dimension": ix.dimension,
        "index_type": ix.index_type, "built": ix.params.get("built", "empty"), "vectors": ix.vectors,
        "file": str(path), "file_bytes": path.stat().st_size if path.exists() else 0,
        "updated": ix.updated.isoformat(timespec="seconds"),
    }
