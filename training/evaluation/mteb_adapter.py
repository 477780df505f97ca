"""Our encoders as mteb models: `mteb.evaluate(MtebEncoder(encoder), task)` runs them on any mteb task
whose data is at hand, and BM25 runs through mteb's search protocol.

mteb hands an encoder a DataLoader of {"text": [...]} batches, a prompt type (query, document, or
None for symmetric tasks such as STS) and the task's metadata; we pass queries (and symmetric
inputs) the query-side instruction and documents the document-side one.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from mteb.models.model_meta import ModelMeta
from mteb.similarity_functions import cos_sim, pairwise_cos_sim
from mteb.types import PromptType

from training.formats import document_text

from .encoders import Encoder


def _meta(name: str, fingerprint: str, dim: int | None = None) -> ModelMeta:
    # create_empty fills the fields mteb needs; the fingerprint stands in for a hub revision
    return ModelMeta.create_empty().model_copy(update={
        "name": f"promptembedder/{name}", "revision": fingerprint, "embed_dim": dim,
        "similarity_fn_name": "cosine", "framework": ["PyTorch"],
    })


def task_instruction(task_metadata) -> str | None:
    prompt = getattr(task_metadata, "prompt", None)
    if isinstance(prompt, dict):
        return prompt.get(PromptType.query.value)
    return prompt


class MtebEncoder:
    """mteb's EncoderProtocol over our Encoder. Instructions given here win over the task's prompt."""

    def __init__(self, encoder: Encoder, query_instruction: str | None = None,
                 document_instruction: str | None = None, **_: Any):
        self.encoder = encoder
        self.query_instruction, self.document_instruction = query_instruction, document_instruction

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        if prompt_type == PromptType.document:
            return self.encoder.encode_document(texts, self.document_instruction)
        instruction = self.query_instruction if self.query_instruction is not None else task_instruction(task_metadata)
        return self.encoder.encode(texts, instruction)

    def similarity(self, embeddings1, embeddings2):
        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2):
        return pairwise_cos_sim(embeddings1, embeddings2)

    @property
    def mteb_model_meta(self) -> ModelMeta:
        return _meta(self.encoder.name, self.encoder.fingerprint)


class MtebSearch:
    """mteb's SearchProtocol over a searcher with index(ids, documents) / search(queries, top_k) (BM25)."""

    def __init__(self, searcher):
        self.searcher = searcher

    def index(self, corpus, *, task_metadata, hf_split: str, hf_subset: str, encode_kwargs, num_proc=None,
              **kwargs: Any) -> None:
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
        self.searcher.index(list(corpus["id"]), [document_text(t or "", x) for t, x in zip(titles, corpus["text"])])

    def search(self, queries, *, task_metadata, hf_split: str, hf_subset: str, top_k: int, encode_kwargs,
               top_ranked=None, num_proc=None, **kwargs: Any) -> dict[str, dict[str, float]]:
        hits = self.searcher.search(list(queries["text"]), top_k)
        return dict(zip(queries["id"], hits))

    @property
    def mteb_model_meta(self) -> ModelMeta:
        return _meta(self.searcher.name, self.searcher.fingerprint)
