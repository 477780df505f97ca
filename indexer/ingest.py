"""Writing documents into a collection: new and changed files chunked, embedded and committed in
batches; unchanged ones skipped; gone ones removed (rows first, then vectors, so a kill at any point
leaves only what reconcile.py repairs)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from sqlalchemy import delete, insert, select, update
from tqdm.auto import tqdm

from .chunking import chunk_text
from .filters import path_prefix_condition
from .loaders import LoadedFile, LoaderOptions, Problem, TextRecord, file_hash, iter_loaded, walk
from .store import ID_BATCH, ChunkRow, DocumentRow, IndexRow, utcnow
from .vectors import VectorIndex

if TYPE_CHECKING:  # types only: collection.py imports this module
    from .collection import Collection, Store

BATCH_CHUNKS = 64  # chunks embedded and committed together: what a kill can lose


@dataclass
class IndexReport:
    collection: str
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    completed: int = 0  # stored chunks embedded on open: an interrupted run's, or all of them for a new index
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "problems"}
        return {**data, "problems": [{"path": p.path, "message": p.message} for p in self.problems]}

    def summary(self) -> str:
        lines = [f"{self.collection}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                 f"{self.removed} removed; {self.chunks_embedded} chunks embedded in {self.seconds:.1f} s"]
        if self.completed:
            lines.append(f"  {self.completed} stored chunks embedded on open (an interrupted run completed, or the "
                         "collection's chunks embedded for a new model or instruction)")
        if self.problems:
            lines.append(f"  {len(self.problems)} problem(s):")
            lines.extend(f"    {p}" for p in self.problems)
        return "\n".join(lines)


def index(collection: Collection, paths: Sequence[str | os.PathLike], options: LoaderOptions | None = None,
          batch_chunks: int = BATCH_CHUNKS) -> IndexReport:
    """Index files and folders: new and changed files are embedded, files gone from a folder removed."""
    collection._require_writable()
    options = options or LoaderOptions()
    started = time.perf_counter()
    report = IndexReport(collection.name, completed=collection.completed)
    to_load, known = plan(collection, paths, report)
    _ingest(collection, iter_loaded(to_load, options), len(to_load), known, report, batch_chunks)
    finish(collection)
    report.seconds = time.perf_counter() - started
    return report


def plan(collection: Collection, paths: Sequence[str | os.PathLike],
         report: IndexReport) -> tuple[list[Path], dict[str, tuple[str, float, int]]]:
    """Walk the paths, remove documents whose files are gone and count unchanged ones; (the files to load,
    the stored documents by path). Shared by index() and the Ray path (distributed.py)."""
    files, report.problems = walk(paths)
    report.files = len(files)
    known = _known_documents(collection)
    present = {str(f) for f in files}
    gone = []
    for root in (Path(p).expanduser().resolve() for p in paths):
        if root.is_dir():
            prefix = str(root) + os.sep
            gone += [path for path in known if path.startswith(prefix) and path not in present]
    # a folder the walk could not read (permissions, a failing mount) hides its files, it did not delete them;
    # so does a folder given that is now empty while documents were indexed from it (an unmounted drive)
    unreadable = [str(Path(p.path).resolve()) + os.sep for p in report.problems if Path(p.path).is_dir()]
    for root in (Path(p).expanduser().resolve() for p in paths):
        prefix = str(root) + os.sep
        if root.is_dir() and not any(path.startswith(prefix) for path in present):
            unreadable.append(prefix)
    kept = [path for path in gone if any(path.startswith(folder) for folder in unreadable)]
    if kept:
        kept_set = set(kept)
        gone = [path for path in gone if path not in kept_set]
        report.problems.append(Problem(", ".join(u.rstrip(os.sep) for u in unreadable),
                                       f"could not be read or is empty: its {len(kept)} indexed document(s) are "
                                       "kept as they were (remove them with `promptembedder delete`)"))
    if gone:
        report.removed = delete_documents(collection.store, collection.row.id, gone, _loaded(collection), exact=True)
        for target in (collection, *collection.siblings):
            target._dirty = True
    to_load = []
    for f in files:
        old = known.get(str(f))
        stat = _stat(f)
        if old is not None and stat is not None and (old[1], old[2]) == stat:
            report.unchanged += 1
        else:
            to_load.append(f)
    return to_load, known


def upsert(collection: Collection, documents: Iterable[dict], batch_chunks: int = BATCH_CHUNKS) -> IndexReport:
    """Add or replace documents given as {"id": key, "text": ..., "title": ..., "metadata": {...}}."""
    collection._require_writable()
    started = time.perf_counter()
    report = IndexReport(collection.name, completed=collection.completed)
    items = []
    for number, doc in enumerate(documents):
        key, text = doc.get("id"), doc.get("text")
        if not isinstance(key, str) or not key or not isinstance(text, str):
            raise ValueError(f"document {number}: needs a non-empty string 'id' and a string 'text'")
        metadata = dict(doc.get("metadata") or {})
        digest = file_hash((text + "\0" + repr(sorted(metadata.items())) + "\0" + doc.get("title", "")).encode())
        items.append(LoadedFile(key, digest, 0.0, len(text), [TextRecord(text, doc.get("title", ""), metadata)], {}))
    items = list({item.path: item for item in items}.values())  # a key given twice: the last one wins
    report.files = len(items)
    _ingest(collection, iter(items), len(items), _known_documents(collection), report, batch_chunks)
    finish(collection)
    report.seconds = time.perf_counter() - started
    return report


def remove_documents(collection: Collection, paths: Sequence[str]) -> int:
    """Delete documents (exact paths or keys, or everything under a directory) from every index."""
    collection._require_writable()
    count = delete_documents(collection.store, collection.row.id, paths, _loaded(collection))
    for target in (collection, *collection.siblings):
        target._dirty = True
        target.save()
    return count


def finish(collection: Collection) -> None:
    for target in (collection, *collection.siblings):
        target._maybe_rebuild()
        if target._dirty:
            target.save()


def _known_documents(collection: Collection) -> dict[str, tuple[str, float, int]]:
    with collection.store.sessions() as session:
        rows = session.execute(select(DocumentRow.path, DocumentRow.content_hash, DocumentRow.mtime,
                                      DocumentRow.size).where(DocumentRow.collection_id == collection.row.id))
        return {path: (digest, mtime, size) for path, digest, mtime, size in rows}


def _ingest(collection: Collection, loaded: Iterable[LoadedFile | Problem], total: int, known: dict, report: IndexReport,
            batch_chunks: int) -> None:
    batch: list[tuple[LoadedFile, list[dict]]] = []
    pending = 0
    with tqdm(total=total, desc=f"indexing '{collection.name}'", unit="doc", disable=not collection.progress) as bar:
        for item in loaded:
            bar.update(1)
            if isinstance(item, Problem):
                report.problems.append(item)
                continue
            if not admit(collection, item, None, known, report):
                continue
            chunks = _chunk(collection, item)
            if not admit(collection, item, chunks, known, report):
                continue
            batch.append((item, chunks))
            pending += len(chunks)
            if pending >= batch_chunks:
                report.chunks_embedded += write_batch(collection, batch)
                batch, pending = [], 0
                bar.set_postfix(chunks=report.chunks_embedded)
        if batch:
            report.chunks_embedded += write_batch(collection, batch)


def admit(collection: Collection, item: LoadedFile, chunks: list[dict] | None, known: dict,
          report: IndexReport) -> bool:
    """Whether a loaded file's chunks are to be written, counted in the report. Called first without chunks
    (None: a file whose content is unchanged is only touched, never chunked), then with them."""
    old = known.get(item.path)
    if chunks is None:
        report.problems.extend(item.problems)
        if old is not None and old[0] == item.content_hash:
            _touch(collection, item)  # same content, new mtime: nothing to embed
            report.unchanged += 1
            return False
        return True
    if not chunks:
        report.problems.append(Problem(item.path, "no text to index after chunking"))
        return False
    if old is None:
        report.added += 1
    else:
        report.updated += 1
    return True


def _chunk(collection: Collection, item: LoadedFile) -> list[dict]:
    return chunk_records(item.records, collection.model.tokenizer, collection.row.chunk_tokens,
                         collection.row.chunk_overlap)


def chunk_records(records: Sequence[TextRecord], tokenizer, tokens: int, overlap: int) -> list[dict]:
    """A loaded file's chunk rows (without ids): every record cut into token windows."""
    chunks = []
    for number, record in enumerate(records):
        for piece in chunk_text(record.text, tokenizer, tokens, overlap):
            chunks.append({"position": len(chunks), "record": number, "start": piece.start, "end": piece.end,
                           "title": record.title, "text": piece.text, "meta": record.metadata})
    return chunks


def _touch(collection: Collection, item: LoadedFile) -> None:
    with collection.store.sessions.begin() as session:
        session.execute(update(DocumentRow).where(DocumentRow.collection_id == collection.row.id,
                                                  DocumentRow.path == item.path)
                        .values(mtime=item.mtime, size=item.size, meta=item.metadata))


def write_batch(collection: Collection, batch: list[tuple[LoadedFile, list[dict]]]) -> int:
    """Embed, then store (see store_batch)."""
    texts = [chunk["text"] for _, chunks in batch for chunk in chunks]
    targets = [collection, *collection.siblings]
    store_batch(collection, batch, embed_texts(collection.model, texts, [c.document_instruction for c in targets]))
    return len(texts)


def embed_texts(model, texts: list[str], instructions: Sequence[str]) -> list[np.ndarray]:
    """One float32 array per document instruction (several from one text pass where the model can)."""
    if len(instructions) > 1 and hasattr(model, "encode_document_many"):
        vectors = model.encode_document_many(texts, list(instructions), show_progress_bar=False)
    else:
        vectors = [model.encode_document(texts, instruction=i, show_progress_bar=False) for i in instructions]
    return [np.asarray(part, dtype=np.float32) for part in vectors]


def store_batch(collection: Collection, batch: list[tuple[LoadedFile, list[dict]]],
                vectors: Sequence[np.ndarray]) -> None:
    """Commit rows (old chunks out, new in) in one transaction, then add the vectors (one array per index:
    this one and every index opened with it, in that order). A kill between the two leaves rows without
    vectors, which the next writable open embeds."""
    new_ids, old_ids = write_documents(collection.store, collection.row.id, batch)
    for target, part in zip([collection, *collection.siblings], vectors):
        target.vectors.remove(old_ids)
        target.vectors.add(new_ids, np.asarray(part, dtype=np.float32))
        target._dirty = True
        target._maybe_save()


def _loaded(collection: Collection) -> dict[int, VectorIndex]:
    """The FAISS indexes held in memory here (this one and its siblings), by index row id."""
    return {c.index_row.id: c.vectors for c in (collection, *collection.siblings)}


def write_documents(store: Store, collection_id: int, batch) -> tuple[np.ndarray, np.ndarray]:
    """Replace the given documents' chunks in one transaction; (new chunk ids, removed chunk ids).

    Bulk statements (one per table, RETURNING the new ids): per-row ORM flushes cost 10x more.
    """
    now = utcnow()
    with store.sessions.begin() as session:
        paths = [item.path for item, _ in batch]
        existing: dict[str, int] = {}
        for start in range(0, len(paths), ID_BATCH):
            existing.update((path, doc_id) for doc_id, path in session.execute(
                select(DocumentRow.id, DocumentRow.path).where(DocumentRow.collection_id == collection_id,
                                                               DocumentRow.path.in_(paths[start:start + ID_BATCH]))))
        old_doc_ids = list(existing.values())
        old_ids = []
        for start in range(0, len(old_doc_ids), ID_BATCH):
            part = old_doc_ids[start:start + ID_BATCH]
            old_ids += session.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(part))).all()
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
        fields = lambda item: {"content_hash": item.content_hash, "mtime": item.mtime, "size": item.size,  # noqa: E731
                               "meta": item.metadata, "indexed": now}
        updates = [{"id": existing[item.path], **fields(item)} for item, _ in batch if item.path in existing]
        if updates:
            session.execute(update(DocumentRow), updates)
        inserts = [{"collection_id": collection_id, "path": item.path, **fields(item)}
                   for item, _ in batch if item.path not in existing]
        if inserts:
            returned = session.execute(insert(DocumentRow).returning(DocumentRow.id, DocumentRow.path,
                                                                     sort_by_parameter_order=True), inserts)
            existing.update((path, doc_id) for doc_id, path in returned)
        rows = [{"document_id": existing[item.path], **chunk} for item, chunks in batch for chunk in chunks]
        new_ids = session.scalars(insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), rows).all()
    return np.asarray(new_ids, dtype=np.int64), np.asarray(old_ids, dtype=np.int64)


def check_delete_paths(paths: Sequence[str]) -> None:
    """An empty path would resolve to the current directory, and delete every document under it."""
    if any(not str(path).strip() for path in paths):
        raise ValueError("an empty path names no document; give the files or folders to delete "
                         "(to delete the whole collection, name no path)")


def delete_documents(store: Store, collection_id: int, paths: Sequence[str],
                     loaded: dict[int, VectorIndex], exact: bool = False) -> int:
    """Rows first (committed), then the vectors of every index; a kill in between leaves only orphans,
    which the next writable open removes. `loaded` holds indexes already in memory (saved by their owner)."""
    check_delete_paths(paths)
    with store.sessions.begin() as session:
        doc_ids: set[int] = set()
        for raw in paths:
            candidates = {str(raw)} if exact else {str(raw), str(Path(raw).expanduser().resolve())}
            for candidate in candidates:
                doc_ids.update(session.scalars(select(DocumentRow.id).where(
                    DocumentRow.collection_id == collection_id, DocumentRow.path == candidate)))
                if not exact:
                    prefix = candidate.rstrip(os.sep) + os.sep
                    doc_ids.update(session.scalars(select(DocumentRow.id).where(
                        DocumentRow.collection_id == collection_id, path_prefix_condition(prefix))))
        doc_list = sorted(doc_ids)
        chunk_ids: list[int] = []
        for start in range(0, len(doc_list), ID_BATCH):
            part = doc_list[start:start + ID_BATCH]
            chunk_ids += session.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(part))).all()
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
            session.execute(delete(DocumentRow).where(DocumentRow.id.in_(part)))
        index_rows = list(session.scalars(select(IndexRow).where(IndexRow.collection_id == collection_id)))
        session.expunge_all()
    removed = np.asarray(chunk_ids, dtype=np.int64)
    if len(removed):
        for index_row in index_rows:
            if index_row.id in loaded:
                loaded[index_row.id].remove(removed)
                continue
            path = store.directory / index_row.file
            if path.exists():
                vectors = VectorIndex.load(path, index_row.params)
                vectors.remove(removed)
                vectors.save(path)
                with store.sessions.begin() as session:
                    session.execute(update(IndexRow).where(IndexRow.id == index_row.id)
                                    .values(vectors=vectors.ntotal))
    return len(doc_list)


def _stat(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size
