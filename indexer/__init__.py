"""Document collections: loading, chunking, FAISS indexes and SQLite metadata. Knows nothing of training.

    from indexer import Collections
    with Collections() as store, store.open("notes", model, create=True) as notes:
        print(notes.index(["~/notes"]).summary())
        for hit in notes.search("what did I write about X?", k=5):
            print(hit.score, hit.path, hit.text[:80])
"""
from .collection import Collection, Collections, Hit, IndexReport, default_instructions
from .errors import IndexerError
from .loaders import LoaderOptions

__all__ = ["Collection", "Collections", "Hit", "IndexReport", "IndexerError", "LoaderOptions", "default_instructions"]
