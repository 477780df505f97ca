"""Document collections: loading, chunking, FAISS indexes and SQLite metadata. Knows nothing of training.

    from indexer import Store
    with Store() as store, store.open("notes", model, create=True) as notes:
        print(notes.index(["~/notes"]).summary())
        for hit in notes.search("what did I write about X?", k=5):
            print(hit.score, hit.path, hit.text[:80])

Names are imported lazily, so `import indexer.errors` (the CLI does it) stays instant.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Collection": "collection", "Store": "collection", "Hit": "collection", "IndexReport": "collection",
    "default_instructions": "collection", "IndexerError": "errors", "LoaderOptions": "loaders",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
