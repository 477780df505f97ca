"""Collections tab: index a server folder (inside the roots) or uploaded files, live progress and
per-file problems, stats, delete with confirmation."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from . import render
from .collection_list import collection_dropdown
from .indexing import run_index, save_uploads
from .state import AppState

STATS_COLUMNS = ["collection", "documents", "chunks", "indexes", "vectors (active model)", "index size (KB)"]


def stats_table(state: AppState) -> pd.DataFrame:
    model = state.loaded_model()  # the stats never wait for a model that is still loading
    fingerprint = model.fingerprint if model is not None else None
    rows = []
    for info in state.store.stats():
        mine = [ix for ix in info["indexes"] if ix["fingerprint"] == fingerprint]
        rows.append([info["name"], info["documents"], info["chunks"], len(info["indexes"]),
                     sum(ix["vectors"] for ix in mine), round(sum(ix["file_bytes"] for ix in mine) / 1024, 1)])
    return pd.DataFrame(rows, columns=STATS_COLUMNS)


def valid_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValueError("give the collection a name")
    if len(name) > 100 or any(c in name for c in "/\\\0"):
        raise ValueError(f"'{name}' cannot be a collection name (no slashes, at most 100 characters)")
    return name


def _instructions(query: str | None, document: str | None) -> dict:
    """run_index's instruction arguments: a blank box means the model's own."""
    return {"instruction": (query or "").strip() or None, "document_instruction": (document or "").strip() or None}


def start_folder(state: AppState, folder: str, name: str, query: str | None = None,
                 document: str | None = None) -> str:
    try:
        name = valid_name(name)
        path = state.check_folder(folder)
    except (ValueError, OSError) as exc:
        return render.error(str(exc))
    given = _instructions(query, document)
    state.jobs.start("index", f"index {path} into '{name}'",
                     lambda ctx: run_index(ctx, state, name, [path], **given), {"collection": name, "paths": [str(path)]})
    return render.ok(f"Indexing {path} into '{name}' in the background; progress below. Search keeps working.")


def start_upload(state: AppState, files: list | None, name: str, query: str | None = None,
                 document: str | None = None) -> str:
    try:
        name = valid_name(name)
    except ValueError as exc:
        return render.error(str(exc))
    if not files:
        return render.error("choose one or more files to upload first")
    paths = save_uploads(state, name, [f if isinstance(f, str) else f.name for f in files])
    given = _instructions(query, document)
    state.jobs.start("index", f"index {len(paths)} uploaded file(s) into '{name}'",
                     lambda ctx: run_index(ctx, state, name, paths, **given),
                     {"collection": name, "paths": [str(p) for p in paths]})
    return render.ok(f"Indexing {len(paths)} uploaded file(s) into '{name}'; progress below.")


def delete(state: AppState, name: str, confirmation: str) -> str:
    if not name:
        return render.error("choose the collection to delete")
    if (confirmation or "").strip() != name:
        return render.error(f"type the collection's name ({name}) in the confirmation box to delete it")
    if any((j.get("result") or {}).get("collection") == name for j in state.jobs.running()):
        return render.error(f"'{name}' is being indexed; cancel that job first")
    try:
        info = state.store.drop(name)
    except Exception as exc:
        return render.error(str(exc))
    return render.ok(f"deleted '{name}' ({info['documents']} documents, {info['chunks']} chunks)")


def tick(state: AppState, seen: float | None):
    """Job status every tick; the stats table only when the latest job moved (it re-renders the table)."""
    status = state.jobs.latest("index")
    updated = status["updated"] if status else 0.0
    table = stats_table(state) if updated != seen else gr.skip()
    return render.job(status, "No indexing job yet."), render.problems(status), table, updated


def cancel(state: AppState) -> str:
    running = state.jobs.running("index")
    if not running:
        return render.note("no indexing job is running")
    for status in running:
        state.jobs.cancel(status["id"])
    return render.note("cancelling: the job stops after the current batch; what is indexed stays searchable")


def build(state: AppState) -> dict:
    default_name = state.demo_collection or "my-docs"
    roots = ", ".join(f"`{r}`" for r in state.roots) or "none (start the server with --root FOLDER)"
    with gr.Tab("Collections", id="collections") as tab:
        stats = gr.Dataframe(label="Collections", elem_id="collections-stats", interactive=False,
                             headers=STATS_COLUMNS)
        refresh = gr.Button("Refresh stats", size="sm")
        name = gr.Textbox(label="Collection to index into", value=default_name, elem_id="index-collection")
        with gr.Row():
            query_instruction = gr.Textbox(label="Query instruction (optional; blank: the model's own)",
                                           elem_id="index-query-instruction",
                                           placeholder="e.g. Given a question, retrieve the passage that answers it")
            document_instruction = gr.Textbox(label="Document instruction (optional; blank: the model's own)",
                                              elem_id="index-document-instruction")
        with gr.Row():
            with gr.Column():
                gr.Markdown(f"**Index a folder on the server.** Allowed roots: {roots}")
                folder = gr.Textbox(label="Folder", elem_id="index-folder", placeholder=str(state.roots[0]) if state.roots else "")
                index_folder = gr.Button("Index folder", variant="primary", elem_id="index-folder-button")
            with gr.Column():
                gr.Markdown("**Or upload files** (text, Markdown, HTML, PDF, JSON/JSONL, CSV)")
                upload = gr.File(label="Files", file_count="multiple", elem_id="index-upload")
                index_upload = gr.Button("Index uploaded files", variant="primary", elem_id="index-upload-button")
        message = gr.HTML(elem_id="index-message")
        with gr.Row():
            job = gr.HTML(elem_id="index-job")
            cancel_button = gr.Button("Cancel indexing", size="sm", elem_id="index-cancel")
        problems = gr.HTML(elem_id="index-problems")
        with gr.Accordion("Delete a collection", open=False):
            # custom values allowed, as in the other tabs: a tick may race a refresh; delete() checks the name
            victim = gr.Dropdown(label="Collection", elem_id="delete-collection", allow_custom_value=True)
            confirmation = gr.Textbox(label="Type its name to confirm", elem_id="delete-confirm")
            delete_button = gr.Button("Delete collection", variant="stop", elem_id="delete-button")
            deleted = gr.HTML(elem_id="delete-message")

    def refreshed(victim_name):
        return stats_table(state), collection_dropdown(state, victim_name, pick=False)

    index_folder.click(lambda f, n, q, d: start_folder(state, f, n, q, d),
                       [folder, name, query_instruction, document_instruction], [message])
    index_upload.click(lambda f, n, q, d: start_upload(state, f, n, q, d),
                       [upload, name, query_instruction, document_instruction], [message])
    cancel_button.click(lambda: cancel(state), None, [message])
    for event in (refresh.click, tab.select):
        event(refreshed, [victim], [stats, victim], show_progress="hidden")
    victim.focus(lambda v: collection_dropdown(state, v, pick=False), [victim], [victim], show_progress="hidden")
    # the other tabs' collection dropdowns refresh when their tab is selected
    delete_button.click(lambda v, c: delete(state, v, c), [victim, confirmation], [deleted]).then(
        refreshed, [victim], [stats, victim])
    return {"stats": stats, "job": job, "problems": problems, "victim": victim}
