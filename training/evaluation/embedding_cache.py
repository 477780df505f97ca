"""Embeddings kept on disk, one store per (model fingerprint, side, instruction).

A store is `<key>.npy` (rows of vectors) and `<key>.json` (the model, its fingerprint, side,
instruction, and the sha1 of each row's text). Lookup is by text, so the order and chunking in
which mteb asks for texts does not matter, and vectors computed elsewhere (the GPU `embed`
command) are found again by the scorer. numpy and json only: this runs on the GPU machine too.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from training.errors import TrainingError


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


SIDE_NAMES = {"query": "queries", "document": "documents"}  # progress bars


def model_label(name: str, backbone: str | None = None) -> str:
    """How stores name their model: one checkpoint aligned to several backbones is several models."""
    return name if backbone is None else f"{name}@{backbone}"


def store_key(fingerprint: str, side: str, instruction: str | None) -> str:
    blob = json.dumps([fingerprint, side, instruction], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class EmbeddingStore:
    def __init__(self, folder: str | Path, model: str, fingerprint: str, side: str, instruction: str | None,
                 device: str | None = None, dtype: str = "float32"):
        self.folder, self.dtype = Path(folder), np.dtype(dtype)  # float16 halves what a GPU run sends back
        self.meta = {"model": model, "fingerprint": fingerprint, "side": side, "instruction": instruction,
                     "device": device}
        self.key = store_key(fingerprint, side, instruction)
        self._vectors: np.ndarray | None = None
        self._rows: dict[str, int] = {}
        self._load()

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.folder / f"{self.key}.npy", self.folder / f"{self.key}.json"

    def _load(self) -> None:
        npy, meta = self.paths
        if not (npy.exists() and meta.exists()):
            return
        try:
            info = json.loads(meta.read_text())
            vectors = np.load(npy)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"embedding cache {npy} is unreadable ({exc}); delete it to recompute") from exc
        if len(info.get("texts", [])) != len(vectors):
            raise TrainingError(f"embedding cache {npy} does not match {meta}; delete both to recompute")
        self._vectors = vectors
        self._rows = {key: row for row, key in enumerate(info["texts"])}

    def __len__(self) -> int:
        return len(self._rows)

    def missing(self, texts: list[str]) -> list[str]:
        """The distinct texts not stored yet, in first-seen order."""
        seen, out = set(), []
        for text in texts:
            key = text_key(text)
            if key not in self._rows and key not in seen:
                seen.add(key)
                out.append(text)
        return out

    def get(self, texts: list[str]) -> np.ndarray:
        rows = [self._rows[text_key(t)] for t in texts]
        return self._vectors[rows].astype(np.float32)

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        """Append and write through (the .npy first, then the index: the index is the commit point)."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if not len(texts):
            return
        vectors = np.asarray(vectors, dtype=self._vectors.dtype if self._vectors is not None else self.dtype)
        new, keys, pending = [], [], set()
        for i, text in enumerate(texts):
            key = text_key(text)
            if key not in self._rows and key not in pending:
                pending.add(key)
                new.append(i)
                keys.append(key)
        if not new:
            return
        start = len(self._rows)
        self._vectors = vectors[new] if self._vectors is None else np.concatenate([self._vectors, vectors[new]])
        self._rows.update({key: start + offset for offset, key in enumerate(keys)})
        self._write()

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        npy, meta = self.paths
        ordered = sorted(self._rows, key=self._rows.get)
        tmp = npy.with_name(npy.name + ".tmp.npy")
        np.save(tmp, self._vectors)
        os.replace(tmp, npy)
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps({**self.meta, "texts": ordered}))
        os.replace(tmp, meta)


def fill(store: EmbeddingStore, texts: list[str], encode, instruction: str | None, slice_size: int = 512,
         progress: bool = False, desc: str = "encode") -> int:
    """Encode the texts the store lacks, in slices written through as they finish, so an interrupted
    run keeps what it computed. Longest first: similar lengths batch with little padding."""
    todo = sorted(store.missing(texts), key=len, reverse=True)
    with tqdm(total=len(todo), desc=desc, unit="text", disable=not (progress and todo)) as bar:
        for start in range(0, len(todo), slice_size):
            chunk = todo[start:start + slice_size]
            store.add(chunk, encode(chunk, instruction))
            bar.update(len(chunk))
    return len(todo)


def stores_in(folder: str | Path) -> list[dict]:
    """The metadata of every store in a folder (what `--embeddings DIR` offers)."""
    out = []
    for meta in sorted(Path(folder).glob("*.json")):
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if {"fingerprint", "side", "texts"} <= set(info):
            out.append({k: v for k, v in info.items() if k != "texts"} | {"count": len(info["texts"])})
    return out
