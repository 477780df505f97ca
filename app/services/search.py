"""Searching a collection: which index, which model, which instruction; the CLI and the UI both search here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from embedder import PromptEmbedder
from embedder.protocol import TokenizingEmbedder
from indexer.collection import Collection, Hit, Store
from indexer.errors import IndexerError
from indexer.store import IndexRow


@dataclass
class SearchResult:
    hits: list[Hit]
    mode: str
    instruction: str  # the query instruction of the index searched
    root: str  # the folder the hits' paths are relative to ("" when several)


class IndexedModel:
    """Stands in for the model of a stored index where nothing is embedded (keyword search)."""

    config = None

    def __init__(self, index_row: IndexRow):
        self.fingerprint, self.dimension = index_row.fingerprint, index_row.dimension

    def encode(self, *_, **__):
        raise RuntimeError("keyword search embeds nothing")


class QueryInstruction:
    """A model whose queries use a custom instruction; documents, fingerprint and all else are the model's.

    Lets a search use any query instruction against an index built for another one: the documents
    were embedded under the document-side instruction, which the query instruction does not change.
    """

    def __init__(self, model: TokenizingEmbedder, instruction: str):
        self._model, self._instruction = model, instruction
        self.fingerprint, self.dimension, self.tokenizer = model.fingerprint, model.dimension, model.tokenizer
        self.config = getattr(model, "config", None)  # the model's default instructions

    def encode(self, texts, instruction=None, **options):
        return self._model.encode(texts, instruction=self._instruction, **options)

    def encode_document(self, texts, instruction=None, **options):
        return self._model.encode_document(texts, instruction=instruction, **options)


def recorded_index(store: Store, collection: str, instruction: str | None = None) -> IndexRow | None:
    """The collection's most recent index, for this query instruction where it has one."""
    indexes = store.indexes(collection)
    if instruction is not None:
        indexes = [ix for ix in indexes if ix.instruction == instruction] or indexes
    return indexes[0] if indexes else None


def indexed_instructions(store: Store, collection: str, fingerprint: str) -> list[str]:
    """Query instructions the collection has an index for with this model (newest first)."""
    seen = []
    for ix in store.indexes(collection):
        if ix.fingerprint == fingerprint and ix.instruction not in seen:
            seen.append(ix.instruction)
    return seen


def model_for(store: Store, collection: str, model_name: str | None, instruction: str | None, mode: str | None,
              load: Callable[[str | None], PromptEmbedder]) -> tuple[object, str | None]:
    """(model, instruction) for searching a collection from a command line; `load` loads a model by name.

    No model named: the one the collection was indexed with (its recorded name). Keyword search with no
    model named loads none: the index is found by its recorded fingerprint. No instruction named: the
    model's only index's, when it has one.
    """
    recorded = recorded_index(store, collection, instruction)
    if mode == "keyword" and model_name is None and recorded is not None:
        return IndexedModel(recorded), recorded.instruction
    if model_name is None and recorded is not None and recorded.model_name:
        model_name = recorded.model_name
    model = load(model_name)
    if instruction is None:
        own = indexed_instructions(store, collection, model.fingerprint)
        if len(own) == 1:
            instruction = own[0]
    return model, instruction


def search(store: Store, collection: str, query: str, model, instruction: str | None = None, *,
           query_instruction: str | None = None, k: int = 10, offset: int = 0, mode: str | None = None,
           filters: Sequence[str] = (), path_prefix: str | None = None, group: bool = True,
           model_label: str = "this model", **options) -> SearchResult:
    """Search the collection's index for `instruction` (None: the model's default index).

    query_instruction (the UI's free text): embed the query with it; the index built for it is searched
    where there is one, else the model's newest index (its documents do not depend on the query side);
    "" searches the newest index as it is. options: Collection.search's (keyword_weight).
    """
    searcher = model
    if query_instruction is not None:
        indexed = indexed_instructions(store, collection, model.fingerprint)
        if not indexed:
            raise IndexerError(f"collection '{collection}' has no index for the model {model_label} yet; index "
                               "it first (in the UI: the Collections tab, or wait for the running indexing job)")
        instruction = query_instruction if query_instruction in indexed else indexed[0]
        if query_instruction not in ("", instruction):
            searcher = QueryInstruction(model, query_instruction)
    with store.open(collection, searcher, instruction, writable=False, progress=False) as opened:
        mode = mode or opened.default_mode
        hits = opened.search(query, k=k, filters=list(filters), path_prefix=path_prefix, mode=mode,
                             offset=offset, group=group, **options)
        return SearchResult(hits, mode, opened.instruction, opened.root())


def open_read_only(store: Store, collection: str, model) -> Collection:
    """The collection through the model's newest index (or any, for what needs no vectors)."""
    indexed = indexed_instructions(store, collection, model.fingerprint)
    return store.open(collection, model, instruction=indexed[0] if indexed else None, writable=False,
                      progress=False)
