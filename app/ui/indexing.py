"""Indexing as a background job: files go to the indexer in small slices, so progress is live,
cancel takes effect between slices, and searches answer from what is already indexed."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from .jobs import JobContext
from .state import AppState

SLICE_FILES = 8  # files per indexer call: what a cancel waits for, and how often search sees new documents
FIRST_SLICES = (2, 4)  # smaller first slices: the first documents become searchable sooner
ENCODE_GROUP = 8  # chunks per encode call inside the indexer's batch: progress and cancel granularity
BATCH_CHUNKS = 16  # chunks the indexer embeds and commits together


class CountingModel:
    """The model, with document encoding split into small groups that count progress and check cancel."""

    def __init__(self, model, ctx: JobContext | None, on_chunks=None):
        self._model, self._ctx, self._on_chunks = model, ctx, on_chunks
        self.chunks = 0

    def encode_document(self, texts, instruction=None, **kwargs):
        import numpy as np

        texts = list(texts)
        parts = []
        for start in range(0, len(texts), ENCODE_GROUP):
            if self._ctx is not None:
                self._ctx.check()
            parts.append(np.asarray(self._model.encode_document(texts[start:start + ENCODE_GROUP],
                                                                instruction=instruction, **kwargs)))
            self.chunks += len(parts[-1])
            if self._on_chunks is not None:
                self._on_chunks(self.chunks)
        return np.concatenate(parts) if parts else np.zeros((0, self._model.dimension), dtype=np.float32)

    def __getattr__(self, name):
        return getattr(self._model, name)


def save_uploads(state: AppState, collection: str, files: Sequence[str]) -> list[Path]:
    """Copy uploaded files (Gradio's temporary paths) into home()/uploads/<collection>/, kept for re-indexing."""
    target = state.uploads_dir(collection)
    saved = []
    for file in files:
        source = Path(file)
        destination = target / source.name
        shutil.copyfile(source, destination)
        saved.append(destination)
    return saved


def run_index(ctx: JobContext, state: AppState, collection: str, paths: Sequence[str | os.PathLike],
              ordered_files: Sequence[Path] | None = None, instruction: str | None = None,
              document_instruction: str | None = None) -> dict:
    """Index files and folders into a collection with the active model; returns the report as a dict."""
    from indexer.collection import IndexReport
    from indexer.loaders import walk

    ctx.progress(0, 1, "loading the model")
    model = state.model()
    files, problems = walk(list(paths))
    if ordered_files is not None:  # the caller's order (the demo puts well-known modules first)
        rank = {Path(f).resolve(): i for i, f in enumerate(ordered_files)}
        files.sort(key=lambda f: rank.get(f, len(rank)))
    total = len(files)
    ctx.log(f"{total} file(s) under {', '.join(map(str, paths))}")
    ctx.result(collection=collection, files_total=total, files_done=0)
    done = 0
    counter = CountingModel(model, ctx, on_chunks=lambda n: ctx.progress(
        done, max(total, 1), f"{done}/{total} files, {n} chunks embedded"))
    summary = IndexReport(collection, files=total, problems=list(problems))
    store = state.store
    with store.open(collection, counter, instruction=instruction, document_instruction=document_instruction,
                    create=True, progress=False, model_name=state.model_choice.label) as index:
        summary.completed = index.completed  # a new model's index embeds the stored chunks on open
        for start, end in slices(total):
            ctx.check()
            part = files[start:end]
            report = index.index(part, batch_chunks=BATCH_CHUNKS)
            _merge(summary, report)
            done += len(part)
            ctx.progress(done, max(total, 1), f"{done}/{total} files, {counter.chunks} chunks embedded")
            ctx.result(files_done=done, chunks_embedded=counter.chunks)
            for problem in report.problems:
                ctx.log(f"problem: {problem}")
        folders = [p for p in paths if Path(p).is_dir()]
        if folders:  # one pass over the whole folders: removes documents whose files are gone
            summary.removed += index.index(folders, batch_chunks=BATCH_CHUNKS).removed
    stats = store.stats(collection)[0]
    result = {"report": summary.as_dict(), "documents": stats["documents"], "chunks": stats["chunks"],
              "summary": summary.summary().splitlines()[0]}
    ctx.log(summary.summary())
    return result


def slices(total: int) -> list[tuple[int, int]]:
    """(start, end) of each indexer call: 2, 4, then 8 files at a time."""
    bounds, start = [], 0
    sizes = iter(FIRST_SLICES)
    while start < total:
        end = min(total, start + next(sizes, SLICE_FILES))
        bounds.append((start, end))
        start = end
    return bounds


def _merge(total, part) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks_embedded"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.problems.extend(part.problems)
    total.seconds += part.seconds
