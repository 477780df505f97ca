"""Indexing files into a collection, for the CLI (one pass, the library's progress bar) and the UI (small
slices of files, so progress is live, a cancel takes effect between slices and searches answer from what is
already indexed)."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Sequence

import numpy as np

from embedder.protocol import TokenizingEmbedder
from indexer import distributed
from indexer.collection import BATCH_CHUNKS, IndexReport, Store
from indexer.loaders import LoaderOptions, walk

from .progress import Reporter

SLICE_FILES = 8  # files per indexer call: what a cancel waits for, and how often search sees new documents
FIRST_SLICES = (2, 4)  # smaller first slices: the first documents become searchable sooner
ENCODE_GROUP = 8  # chunks per encode call inside the indexer's batch: progress and cancel granularity
SLICE_BATCH_CHUNKS = 16  # chunks embedded and committed together in sliced indexing


class CountingModel:
    """The model, with document encoding split into small groups that count progress and check cancel."""

    def __init__(self, model: TokenizingEmbedder, reporter: Reporter | None, on_chunks=None):
        self._model, self._reporter, self._on_chunks = model, reporter, on_chunks
        self.fingerprint, self.dimension, self.tokenizer = model.fingerprint, model.dimension, model.tokenizer
        self.config = getattr(model, "config", None)  # the model's default instructions
        self.chunks = 0

    def encode(self, texts, instruction=None, **options):
        return self._model.encode(texts, instruction=instruction, **options)

    def encode_document(self, texts, instruction=None, **kwargs):
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), ENCODE_GROUP):
            if self._reporter is not None:
                self._reporter.check()
            parts.append(np.asarray(self._model.encode_document(texts[start:start + ENCODE_GROUP],
                                                                instruction=instruction, **kwargs)))
            self.chunks += len(parts[-1])
            if self._on_chunks is not None:
                self._on_chunks(self.chunks)
        return np.concatenate(parts) if parts else np.zeros((0, self._model.dimension), dtype=np.float32)


def check_paths(paths: Sequence[str | os.PathLike]) -> None:
    """Every path is an existing regular file or folder (not /dev/null, a FIFO, a device)."""
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"{raw}: no such file or folder; nothing was indexed") from None
        except OSError as exc:  # a link loop, a permission problem
            raise ValueError(f"{raw}: cannot be read ({exc.strerror or exc}); nothing was indexed") from None
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ValueError(f"{raw}: not a regular file or a folder (a device, FIFO or socket); nothing was indexed")


def instruction_pairs(queries: list[str], documents: list[str]) -> list[tuple[str | None, str | None]]:
    """(query, document) instruction per index: one pair (either may be None: the model's), or n of each."""
    if len(queries) <= 1 and len(documents) <= 1:
        return [(queries[0] if queries else None, documents[0] if documents else None)]
    if len(queries) != len(documents):
        raise ValueError(f"{len(documents)} --document-instruction for {len(queries)} --instruction: several "
                         "indexes need one of each per index (the query instruction is the index's key)")
    return list(zip(queries, documents))


def index(store: Store, collection: str, model, paths: Sequence[str | os.PathLike], *,
          pairs: Sequence[tuple[str | None, str | None]] = ((None, None),), options: LoaderOptions | None = None,
          model_name: str = "", batch_chunks: int = BATCH_CHUNKS, reporter: Reporter | None = None,
          ordered_files: Sequence[Path] | None = None, ray: str | None = None, ray_workers: int | None = None,
          ray_shards: str | None = None, backbone: str | None = None, **settings) -> IndexReport:
    """Index files and folders into the collection (created if new): one index per (query, document)
    instruction pair, each text read once for all. settings: Store.open's (index_type, index_params,
    chunk_tokens, chunk_overlap). With a reporter, files go in small slices (see the module's doc).
    ray: embed on a Ray cluster (indexer/distributed.py): "" starts a local one, else a running cluster's
    address; model_name and backbone must load the same model on its workers."""
    check_paths(paths)  # before a collection is created for nothing
    (instruction, document_instruction), also = pairs[0], list(pairs[1:])
    opening = dict(document_instruction=document_instruction, model_name=model_name, create=True, also=also,
                   **settings)
    if ray is not None:
        distributed.import_ray()  # a missing extra is said before the collection is created
        with store.open(collection, model, instruction, **opening) as opened:
            return distributed.index(opened, paths, model_name=model_name, backbone=backbone, options=options,
                                     address=ray or None, workers=ray_workers, shard_root=ray_shards)
    if reporter is None:
        with store.open(collection, model, instruction, **opening) as opened:
            return opened.index(paths, options, batch_chunks=batch_chunks)
    return _index_in_slices(store, collection, model, paths, instruction, opening, options, reporter, ordered_files)


def _index_in_slices(store: Store, collection: str, model, paths, instruction: str | None, opening: dict,
                     options: LoaderOptions | None, reporter: Reporter, ordered_files) -> IndexReport:
    files, problems = walk(list(paths))
    if ordered_files is not None:  # the caller's order (the demo puts well-known modules first)
        rank = {Path(f).resolve(): i for i, f in enumerate(ordered_files)}
        files.sort(key=lambda f: rank.get(f, len(rank)))
    total = len(files)
    reporter.log(f"{total} file(s) under {', '.join(map(str, paths))}")
    reporter.result(collection=collection, files_total=total, files_done=0)
    done = 0
    counter = CountingModel(model, reporter, on_chunks=lambda n: reporter.progress(
        done, max(total, 1), f"{done}/{total} files, {n} chunks embedded"))
    summary = IndexReport(collection, files=total, problems=list(problems))
    with store.open(collection, counter, instruction, progress=False, **opening) as opened:
        summary.completed = opened.completed  # a new model's index embeds the stored chunks on open
        for start, end in slices(total):
            reporter.check()
            part = files[start:end]
            report = opened.index(part, options, batch_chunks=SLICE_BATCH_CHUNKS)
            _add(summary, report)
            done += len(part)
            reporter.progress(done, max(total, 1), f"{done}/{total} files, {counter.chunks} chunks embedded")
            reporter.result(files_done=done, chunks_embedded=counter.chunks)
            for problem in report.problems:
                reporter.log(f"problem: {problem}")
        folders = [p for p in paths if Path(p).is_dir()]
        if folders:  # one pass over the whole folders: removes documents whose files are gone
            summary.removed += opened.index(folders, options, batch_chunks=SLICE_BATCH_CHUNKS).removed
    return summary


def slices(total: int) -> list[tuple[int, int]]:
    """(start, end) of each indexer call: 2, 4, then 8 files at a time."""
    bounds, start = [], 0
    sizes = iter(FIRST_SLICES)
    while start < total:
        end = min(total, start + next(sizes, SLICE_FILES))
        bounds.append((start, end))
        start = end
    return bounds


def _add(total: IndexReport, part: IndexReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks_embedded"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.problems.extend(part.problems)
    total.seconds += part.seconds


def reindex(store: Store, collection: str, model, instruction: str | None, model_name: str,
            reporter: Reporter | None = None, on_chunks=None) -> int:
    """Build the model's index of a collection from its stored chunks; the number of chunks embedded."""
    counter = CountingModel(model, reporter, on_chunks)
    store.open(collection, counter, instruction=instruction, create=True, progress=False,
               model_name=model_name).close()
    return counter.chunks
