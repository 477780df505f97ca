"""Metadata storage through SQLAlchemy: collections, documents, chunks and the FAISS indexes built over them.

SQLite by default (a file next to the FAISS files, in WAL mode so searches are not blocked while a
run writes); any SQLAlchemy URL is accepted. Chunk ids are the FAISS ids, and are never re-used
(AUTOINCREMENT), so a stale vector can never be mistaken for a new chunk's.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import (JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event,
                        select)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from . import keyword
from .errors import IndexerError

ID_BATCH = 500  # ids per SQL IN (...) clause


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class CollectionRow(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    documents: Mapped[list["DocumentRow"]] = relationship(back_populates="collection", cascade="all, delete-orphan",
                                                          passive_deletes=True)
    indexes: Mapped[list["IndexRow"]] = relationship(back_populates="collection", cascade="all, delete-orphan",
                                                     passive_deletes=True)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)  # absolute file path, or the key given to upsert()
    content_hash: Mapped[str] = mapped_column(String(64))
    mtime: Mapped[float] = mapped_column(Float, default=0.0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    indexed: Mapped[datetime] = mapped_column(default=utcnow)
    collection: Mapped[CollectionRow] = relationship(back_populates="documents")
    chunks: Mapped[list["ChunkRow"]] = relationship(back_populates="document", cascade="all, delete-orphan",
                                                    passive_deletes=True, order_by="ChunkRow.position")


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order within the document
    record: Mapped[int] = mapped_column(Integer, default=0)  # page, row or object within the file
    start: Mapped[int] = mapped_column(Integer)  # character offsets within the record's text
    end: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)  # the record's own metadata (JSON fields, CSV columns)
    document: Mapped[DocumentRow] = relationship(back_populates="chunks")


class IndexRow(Base):
    """One FAISS index: the vectors of a collection's chunks under one (instruction, model)."""

    __tablename__ = "indexes"
    # AUTOINCREMENT: the FAISS file is named after the id, so a dropped index's id must not come back
    __table_args__ = (UniqueConstraint("collection_id", "instruction", "fingerprint"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    instruction: Mapped[str] = mapped_column(Text)  # the query-side instruction searches use
    document_instruction: Mapped[str] = mapped_column(Text)  # what the chunks were embedded under
    fingerprint: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(Text, default="")  # how to load the model again (--model)
    dimension: Mapped[int] = mapped_column(Integer)
    index_type: Mapped[str] = mapped_column(String(16), default="auto")  # requested: auto, flat, ivf, hnsw
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # requested options (nlist, nprobe, M, ...)
    file: Mapped[str] = mapped_column(Text, default="")  # FAISS file name, relative to the store directory
    vectors: Mapped[int] = mapped_column(Integer, default=0)  # as of the last save (stats --check counts)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    collection: Mapped[CollectionRow] = relationship(back_populates="indexes")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers are never blocked by the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process never corrupts or loses a commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine on the store, its tables created where missing. A file that is not a database is an
    IndexerError that says so (nothing in it is touched)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        Base.metadata.create_all(engine)
        keyword.install(engine)
    except DatabaseError as exc:
        engine.dispose()
        where = url.split("///", 1)[-1] if url.startswith("sqlite") else engine.url.render_as_string()
        raise IndexerError(f"cannot open the collection store {where}: {str(exc.orig).splitlines()[0]}; move "
                           "the file aside (a new store is then created) or restore it from a backup") from None
    return engine


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def collection_chunk_ids(session: Session, collection_id: int):
    """All chunk ids of a collection, as a sorted int64 array."""
    ids = session.scalars(select(ChunkRow.id).join(DocumentRow).where(DocumentRow.collection_id == collection_id)
                          .order_by(ChunkRow.id)).all()
    return np.asarray(ids, dtype=np.int64)
