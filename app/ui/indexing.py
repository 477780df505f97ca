"""Indexing as a background job: app.services.indexing in small slices, the job as its reporter."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from app.services import indexing

from .jobs import JobContext
from .state import AppState


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
    ctx.progress(0, 1, "loading the model")
    model = state.model()
    summary = indexing.index(state.store, collection, model, paths, pairs=[(instruction, document_instruction)],
                             model_name=state.model_choice.label, reporter=ctx, ordered_files=ordered_files)
    stats = state.store.stats(collection)[0]
    ctx.log(summary.summary())
    return {"report": summary.as_dict(), "documents": stats["documents"], "chunks": stats["chunks"],
            "summary": summary.summary().splitlines()[0]}
